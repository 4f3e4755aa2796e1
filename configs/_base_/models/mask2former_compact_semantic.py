# Reference model of the held-out semantic benchmark: MMSegmentation's Mask2Former
# (mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py: Mask2FormerHead with mmdet's
# MSDeformAttnPixelDecoder, 9-layer transformer decoder, class CE x 2 + point-sampled mask
# BCE x 5 + dice x 5, Hungarian matching) made as compact as
# configs/_base_/models/clustseg_compact_semantic.py, with the same backbone and input:
# - backbone: the same ResNet-18 at 1/4 width (16..128 channels), trainable BN, from scratch;
# - pixel decoder: 64 channels, 4 heads, FFN 256, mmseg's 6 deformable encoder layers on 3
#   levels; GN keeps 32 groups;
# - transformer decoder: 3 layers (ClustSeg compact has 3 cross-attention layers), 64-d,
#   4 heads, FFN 256; mmseg's 100 queries;
# - 2048 uncertainty-sampled points per mask (mmseg: 12544 for 512^2 crops; the compact
#   ClustSeg panoptic model samples 2048), mmseg's oversample / importance ratios;
# - data preprocessor: ClustSeg's (size_divisor 32, padded labels 255) instead of padding to a
#   fixed crop, so that both models see the same batches.
# The benchmark config sets num_classes (decode_head.num_classes and the class weights).
num_classes = 11
feat = 64
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='ClustSegSegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    size_divisor=32,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet', depth=18, stem_channels=16, base_channels=16, num_stages=4,
        out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False,
        style='pytorch', init_cfg=None),
    decode_head=dict(
        type='Mask2FormerHead',
        in_channels=[16, 32, 64, 128],
        strides=[4, 8, 16, 32],
        feat_channels=feat,
        out_channels=feat,
        num_classes=num_classes,
        num_queries=100,
        num_transformer_feat_level=3,
        align_corners=False,
        pixel_decoder=dict(
            type='mmdet.MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=feat, num_heads=4, num_levels=3,
                                       num_points=4, im2col_step=64, dropout=0.0,
                                       batch_first=True, norm_cfg=None, init_cfg=None),
                    ffn_cfg=dict(embed_dims=feat, feedforward_channels=256, num_fcs=2,
                                 ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
                init_cfg=None),
            positional_encoding=dict(num_feats=feat // 2, normalize=True),
            init_cfg=None),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=feat // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=4, attn_drop=0.0, proj_drop=0.0,
                                   dropout_layer=None, batch_first=True),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=4, attn_drop=0.0,
                                    proj_drop=0.0, dropout_layer=None, batch_first=True),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=256, num_fcs=2,
                             act_cfg=dict(type='ReLU', inplace=True), ffn_drop=0.0,
                             dropout_layer=None, add_identity=True)),
            init_cfg=None),
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                       reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
        train_cfg=dict(
            num_points=2048,
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type='mmdet.HungarianAssigner',
                match_costs=[
                    dict(type='mmdet.ClassificationCost', weight=2.0),
                    dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                    dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)
                ]),
            sampler=dict(type='mmdet.MaskPseudoSampler'))),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
