# Reference: mmdet's Mask2Former-R50 panoptic config as mmdet ships it, but from random init
# (no ImageNet download), for speed / memory comparisons with the ClustSeg-R50 config
# (docs/benchmark.md). A local ImageNet file can be named in model.backbone.init_cfg.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(backbone=dict(init_cfg=None))
custom_imports = dict(imports=['clustseg'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
