# Ablation, Table 4d (recursive clustering): T = 1 EM round in every recurrent cross-attention
# layer (the paper's model: T = 3). The parameter count does not depend on T. Also the T = 1 row
# of Table 5, where recurrent and stacked non-recurrent cross-attention are the same model.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(num_iters=1)))
