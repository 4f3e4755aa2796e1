# Ablation (Table 4c): T = 1 EM rounds per recurrent cross-attention layer (default 3). The
# parameter count does not depend on T.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(num_iters=1)))
