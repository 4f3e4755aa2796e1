# Reference: mmdet's Mask2Former-R50 panoptic config as mmdet ships it (ImageNet-1K
# torchvision://resnet50, frozen BN, GN pixel decoder, AdamW 1e-4 with the backbone at 0.1x),
# for speed / memory / accuracy comparisons with the ClustSeg-R50 config (docs/benchmark.md),
# which now uses the same backbone, norms and optimizer. The pretrained load goes through
# ClustSeg's strict loader and offline switch (README): torchvision's classifier is declared
# unused, like in the ClustSeg configs.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(backbone=dict(init_cfg=dict(unused_keys=[r'^fc\.'])))
custom_imports = dict(imports=['clustseg'], allow_failed_imports=False)
default_hooks = dict(checkpoint=dict(type='SafeCheckpointHook'))
