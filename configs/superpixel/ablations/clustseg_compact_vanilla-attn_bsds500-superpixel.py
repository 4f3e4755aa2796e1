# Ablation (Table 4c analogue): the decoder uses standard cross-attention (Eq. 5, softmax over
# pixels) instead of recurrent cross-attention (softmax over clusters).
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(decoder=dict(variant=dict(type='SoftmaxOverPixels')))
