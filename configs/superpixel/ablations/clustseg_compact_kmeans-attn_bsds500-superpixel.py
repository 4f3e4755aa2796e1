# Ablation (Table 4c analogue): the decoder uses kMaX-DeepLab's k-means cross-attention (hard
# argmax over clusters) instead of recurrent cross-attention.
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(decoder=dict(variant=dict(type='HardArgmax')))
