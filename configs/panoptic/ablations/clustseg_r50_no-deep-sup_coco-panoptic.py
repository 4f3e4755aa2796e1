# Ablation (Table 7a): no deep supervision - only the final prediction is supervised (the
# default supervises the prediction after every E-step of every layer).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(deep_supervision='final'))
