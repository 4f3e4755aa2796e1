# ClustSeg superpixel model (paper §4.4 / App. A.4) on an ImageNet-1K ResNet-50 (App. A: all
# backbones start from ImageNet weights; torchvision's, downloaded on first use, offline:
# CLUSTSEG_OFFLINE_WEIGHTS, README). BN stays trainable: 8 images per GPU here (no Mask2Former
# recipe applies to superpixels). Under DDP on GPUs mmengine turns it into SyncBN (sync_bn),
# so that every rank keeps the same running statistics, from all ranks' images; tools/train.py
# leaves plain BN on a CPU, where torch has no SyncBN.
norm_cfg = dict(type='BN', requires_grad=True)
sync_bn = 'torch'
data_preprocessor = dict(
    type='ClustSegSegDataPreProcessor',  # mmseg's, refusing huge test images
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    size_divisor=1,  # batch = pad to the largest image; labels padded with -1 (ignored)
    pad_val=0,
    seg_pad_val=-1)
embed_dims = 256
model = dict(
    type='SuperpixelSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50',
                      unused_keys=[r'^fc\.'])),
    pixel_decoder=dict(
        type='AxialPixelDecoder',
        in_channels=[256, 512, 1024, 2048],
        channels=[512, 256, 256, 128],
        num_heads=8,
        num_blocks=(1, 5),
        norm_cfg=norm_cfg),
    initializer=dict(type='GridInitializer', in_channels=256, embed_dims=embed_dims,
                     pos_dims=32),
    decoder=dict(
        type='ClusterDecoder',
        in_channels=[512, 256, 256],
        embed_dims=embed_dims,
        num_heads=8,
        num_iters=3,
        ffn_dims=2048,
        layer_levels=(0, 0, 1, 1, 2, 2),
        variant=dict(type='SoftmaxOverClusters')),
    embed_head=dict(type='SuperpixelEmbeddingHead', in_channels=128, embed_dims=32,
                    stem_dims=32, norm_cfg=norm_cfg),
    loss_slic=dict(type='SLICLoss', loss_weight=1.0, pos_weight=0.003),
    loss_recon=dict(type='SuperpixelReconstructionLoss', loss_weight=10.0),
    final_iters=3,
    # full-resolution E/M: 'local' = each pixel among the 9 centers of its own and the
    # neighbouring seed-grid cells, O(9 HW); 'dense' = softmax over all K, O(K HW) (ablation)
    final_em_mode='local',
    train_cfg=dict(num_superpixels_range=(50, 2500), decoder_loss_weight=1.0),
    test_cfg=dict(num_superpixels=600, min_size_ratio=0.25))
