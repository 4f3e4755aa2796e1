# Ablation (Table 4d / 5 analogue): one E/M round per recurrent cross-attention (T = 1)
# in the decoder and at full resolution. Same number of parameters as T = 3.
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(decoder=dict(num_iters=1), final_iters=1)
