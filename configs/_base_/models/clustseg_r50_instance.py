# ClustSeg instance model (paper §4.2, App. A.2): the panoptic model with 100 image-adaptive
# centers (Eq. 8) and no stuff; Mask2Former's matching and mask losses, instance output only.
_base_ = ['./clustseg_r50_panoptic.py']
num_things_classes = 80
num_stuff_classes = 0
num_classes = num_things_classes
embed_dims = 256
model = dict(
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        initializer=dict(_delete_=True, type='ImageAdaptiveInitializer', in_channels=256,
                         embed_dims=embed_dims, num_queries=100, pos_dims=64),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    train_cfg=dict(assigner=dict(num_things_classes=num_things_classes)),
    test_cfg=dict(panoptic_on=False))
