# ClustSeg-R101, COCO panoptic, the paper's recipe.
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(backbone=dict(depth=101))
