# Parts shared by the ClustSeg panoptic and instance models (paper §4.1-4.2) on a ResNet-50
# trained from scratch, in mmdet's MaskFormer family: backbone -> AxialPixelDecoder -> dreamy
# start -> 6 recurrent cross-attention layers (T = 3, strides 32/16/8, two each) -> class + mask
# prediction after every E-step. The task bases (clustseg_r50_panoptic.py,
# clustseg_r50_instance.py) add the initializer, the losses and train_cfg.
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
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        pixel_decoder=dict(
            type='AxialPixelDecoder',
            in_channels=[256, 512, 1024, 2048],
            channels=[512, 256, 256, 128],
            num_heads=8,
            num_blocks=(1, 5),
            norm_cfg=norm_cfg),
        init_level=1,  # stride 16: the level the initializer reads
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
        deep_supervision='all'),
    panoptic_fusion_head=dict(
        type='MaskFormerFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_panoptic=None,
        init_cfg=None),
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=True,
        max_per_image=100,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
