# Ablation, Table 4d (recursive clustering): T = 2 EM rounds in every recurrent cross-attention
# layer (the paper's model: T = 3). The parameter count does not depend on T.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(num_iters=2)))
