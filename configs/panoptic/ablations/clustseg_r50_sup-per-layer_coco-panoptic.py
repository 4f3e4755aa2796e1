# Ablation, Table 7a "Only final E-step of each recurrent cross-attention": the prediction after
# the last E/M round of every decoder layer is supervised (6 of the 18), instead of every
# E-step (the paper's deep supervision).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(deep_supervision=dict(type='LastEStepPerLayer')))
