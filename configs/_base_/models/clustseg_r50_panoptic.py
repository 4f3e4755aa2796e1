# ClustSeg panoptic model (paper §4.1, App. A.1) on a ResNet-50 trained from scratch, in mmdet's
# MaskFormer family: backbone -> AxialPixelDecoder -> dreamy start (75 image-adaptive thing
# centers + 53 memory-bank stuff centers = 128) -> 6 recurrent cross-attention layers (T = 3,
# strides 32/16/8, two each) -> class + mask prediction after every E-step.
# To start from ImageNet weights you have locally:
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint='/path/resnet50.pth').
num_things_classes = 80
num_stuff_classes = 53
num_classes = num_things_classes + num_stuff_classes
embed_dims = 256
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    pad_mask=True,
    mask_pad_value=0,
    pad_seg=True,
    seg_pad_value=255)
model = dict(
    type='MaskFormer',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    panoptic_head=dict(
        type='ClustSegHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        pixel_decoder=dict(
            type='AxialPixelDecoder',
            in_channels=[256, 512, 1024, 2048],
            channels=[512, 256, 256, 128],
            num_heads=8,
            num_blocks=(1, 5),
            norm_cfg=norm_cfg),
        init_level=1,  # stride 16
        initializer=dict(
            type='PanopticInitializer',
            stuff_class_offset=num_things_classes,
            thing_initializer=dict(type='ImageAdaptiveInitializer', in_channels=256,
                                   embed_dims=embed_dims, num_queries=75, pos_dims=64),
            stuff_initializer=dict(type='MemoryBankInitializer', num_classes=num_stuff_classes,
                                   feat_dims=256, embed_dims=embed_dims, queue_size=256,
                                   samples_per_class=16)),
        decoder=dict(
            type='ClusterDecoder',
            in_channels=[512, 256, 256],
            embed_dims=embed_dims,
            num_heads=8,
            num_iters=3,
            ffn_dims=2048,
            layer_levels=(0, 0, 1, 1, 2, 2),
            variant='recurrent'),
        mask_dims=embed_dims,
        deep_supervision='all',
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=5.0)),
    panoptic_fusion_head=dict(
        type='MaskFormerFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_panoptic=None,
        init_cfg=None),
    train_cfg=dict(
        num_points=12544,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='FixedStuffHungarianAssigner',
            num_things_classes=num_things_classes,
            match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
            ]),
        sampler=dict(type='MaskPseudoSampler')),
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=True,
        max_per_image=100,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
