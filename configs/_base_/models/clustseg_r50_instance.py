# ClustSeg instance model (paper §4.2, App. A.2): 100 image-adaptive centers (Eq. 8), no stuff;
# Mask2Former's matching and point-sampled mask losses with the paper's weights (BCE 5, dice 2);
# classes from a small FFN on the instance centers trained with a sigmoid binary cross-entropy
# (weight 2, no-object queries 0.1, as Mask2Former's class term); instance output only.
_base_ = ['./clustseg_r50_maskformer.py']
num_things_classes = 80
num_stuff_classes = 0
num_classes = num_things_classes
embed_dims = 256
model = dict(
    data_preprocessor=dict(pad_seg=False),  # instance samples carry no semantic map
    panoptic_head=dict(
        type='ClustSegInstanceHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        initializer=dict(type='ImageAdaptiveInitializer', in_channels=256,
                         embed_dims=embed_dims, num_queries=100, pos_dims=64),
        class_loss_weight=2.0,
        no_object_weight=0.1,
        loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=2.0)),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    train_cfg=dict(
        num_points=12544,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='FixedStuffHungarianAssigner',
            num_things_classes=num_things_classes,
            match_costs=[
                # class term on the FFN's sigmoids (Deformable DETR's focal cost)
                dict(type='FocalLossCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
            ])),
    test_cfg=dict(panoptic_on=False))
