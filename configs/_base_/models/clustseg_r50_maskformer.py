# Parts shared by the ClustSeg panoptic and instance models (paper §4.1-4.2) on an ImageNet-1K
# ResNet-50, in mmdet's MaskFormer family: backbone -> AxialPixelDecoder -> dreamy start -> 6
# recurrent cross-attention layers (T = 3, strides 32/16/8, two each) -> class + mask
# prediction after every E-step. The task bases (clustseg_r50_panoptic.py,
# clustseg_r50_instance.py) add the initializer, the losses and train_cfg.
# Norms as MMDetection's Mask2Former recipe (docs/recipes.md): the pretrained backbone's BN
# frozen (statistics and affine), GroupNorm (32 groups) in the pixel decoder, so that nothing
# depends on the 2 images per GPU. The backbone weights are torchvision's, downloaded by
# mmengine on first use; without internet set CLUSTSEG_OFFLINE_WEIGHTS (README, "Pretrained
# weights offline").
num_things_classes = 80
num_stuff_classes = 53
num_classes = num_things_classes + num_stuff_classes
embed_dims = 256
backbone_norm_cfg = dict(type='BN', requires_grad=False)
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
data_preprocessor = dict(
    type='ClustSegDetDataPreprocessor',  # mmdet's, refusing huge test images
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
        norm_cfg=backbone_norm_cfg,
        norm_eval=True,
        style='pytorch',
        # torchvision's classifier (fc) is the one part of the file a backbone does not have
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50',
                      unused_keys=[r'^fc\.'])),
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
        decoder=dict(
            type='ClusterDecoder',
            in_channels=[512, 256, 256],
            embed_dims=embed_dims,
            num_heads=8,
            num_iters=3,
            ffn_dims=2048,
            layer_levels=(0, 0, 1, 1, 2, 2),
            variant=dict(type='SoftmaxOverClusters')),
        mask_dims=embed_dims,
        deep_supervision=dict(type='EveryEStep')),
    # mmdet's MaskFormerFusionHead for heads that score each class of a query on its own: the
    # panoptic fusion of each query's best class, mmdet's instance protocol over (query, class)
    # pairs (docs/CONTRACTS.md)
    panoptic_fusion_head=dict(
        type='ClassScoreFusionHead',
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
