# The shipped superpixel model, self-contained (no _base_), for inference from the installed
# package (clustseg.superpixels, the clustseg-superpixels CLI): the model of
# configs/superpixel/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py (the training config
# in the repository, with its datasets and schedule) and its test pipeline without annotation
# loading. tests/test_apis/test_superpixels_api.py checks that both configs build the same
# model. Weights: clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.pth next to this file.
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='ClustSegSegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=-1,
    size_divisor=1)
model = dict(
    type='SuperpixelSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        stem_channels=16,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        style='pytorch',
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    backbone_channels_last=True,
    pixel_decoder=dict(
        type='AxialPixelDecoder',
        in_channels=[16, 32, 64, 128],
        channels=[64, 64, 32, 16],
        num_blocks=(1, 2),
        num_heads=4,
        norm_cfg=norm_cfg),
    initializer=None,
    decoder=None,
    embed_head=dict(
        type='SuperpixelEmbeddingHead',
        in_channels=16,
        embed_dims=8,
        stem_dims=8,
        stem_stride=2,
        norm_cfg=norm_cfg),
    final_em_mode='local',
    final_iters=2,
    loss_slic=dict(type='SLICLoss', loss_weight=1.0, pos_weight=0.003),
    loss_recon=dict(type='SuperpixelReconstructionLoss', loss_weight=10.0),
    train_cfg=dict(num_superpixels_range=(30, 200), decoder_loss_weight=0.1),
    test_cfg=dict(num_superpixels=600, min_size_ratio=0.25, compactness=0.8))
# read by clustseg.apis.inference_superpixel (files: checked reading; arrays: packing only)
test_pipeline = [dict(type='LoadImageChecked'), dict(type='PackSuperpixelInputs')]
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
