# Ablation, Table 5 (recurrent vs multiple non-recurrent cross-attention), T = 2: every decoder
# layer runs 2 one-step cross-attentions (same E-step / M-step) with their own Q / K / V
# projections instead of 2 rounds of one shared set (decoder.shared_iters=False): the
# parameter count grows with T.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(num_iters=2, shared_iters=False)))
