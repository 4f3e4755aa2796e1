# ClustSeg-R101, COCO instance segmentation, the paper's recipe (Table 2): torchvision's
# ImageNet-1K weights.
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco.py']
model = dict(backbone=dict(depth=101, init_cfg=dict(checkpoint='torchvision://resnet101')))
