# ClustSeg semantic model (paper §4.3, App. A.3) on an ImageNet-1K ResNet-50, in mmseg's
# EncoderDecoder: backbone -> AxialPixelDecoder -> dreamy start (K = num_classes class centers
# from per-class FIFO memory banks filled from the ground truth, Eq. 7) -> 6 recurrent
# cross-attention layers (T = 3, strides 32/16/8, two each) -> per-pixel class scores (the mask
# logits of the K centers) after every E-step; loss = CE x 5 + dice x 1 on every E-step.
# Norms as the Mask2Former recipe (docs/recipes.md): frozen BN in the pretrained backbone,
# GroupNorm (32 groups) in the pixel decoder. Backbone weights: torchvision's (downloaded on
# first use; offline: CLUSTSEG_OFFLINE_WEIGHTS, README).
num_classes = 150
embed_dims = 256
backbone_norm_cfg = dict(type='BN', requires_grad=False)
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
data_preprocessor = dict(
    type='ClustSegSegDataPreProcessor',  # mmseg's, refusing huge test images
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    size_divisor=32,  # batch = the largest image, padded; the head masks the padding
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
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
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50',
                      unused_keys=[r'^fc\.'])),
    decode_head=dict(
        type='ClustSegSemanticHead',
        num_classes=num_classes,
        pixel_decoder=dict(
            type='AxialPixelDecoder',
            in_channels=[256, 512, 1024, 2048],
            channels=[512, 256, 256, 128],
            num_heads=8,
            num_blocks=(1, 5),
            norm_cfg=norm_cfg),
        # Eq. 7's class centers, without query positions (learned_pos=True: the opt-in
        # ablations/clustseg_r50_bank-pos_8xb2-100e_ade20k-640x640.py, docs/recipes.md)
        initializer=dict(type='MemoryBankInitializer', num_classes=num_classes, feat_dims=256,
                         embed_dims=embed_dims, queue_size=256, samples_per_class=16,
                         ignore_index=255, learned_pos=False),
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
        deep_supervision=dict(type='EveryEStep'),
        loss_ce_weight=5.0,
        loss_dice_weight=1.0,
        ignore_index=255,
        align_corners=False),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
    init_cfg=None)
