# ClustSeg-R101, COCO panoptic, the paper's recipe (Table 1): torchvision's ImageNet-1K weights.
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(checkpoint='torchvision://resnet101')))
