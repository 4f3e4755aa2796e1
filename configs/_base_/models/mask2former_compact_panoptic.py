# Reference model of the CPU comparisons (configs/reference/mask2former_compact_*.py: the
# embedded panoptic run, the held-out panoptic and instance benchmarks): MMDetection's Mask2Former
# (mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py: MSDeformAttnPixelDecoder,
# 9-layer transformer decoder, class CE x 2 + point-sampled mask BCE x 5 + dice x 5, Hungarian
# matching, MaskFormerFusionHead with mmdet's test_cfg) made as compact as
# configs/_base_/models/clustseg_compact_panoptic.py, with the same backbone and input:
# - backbone: the same ResNet-18 at 1/4 width (16..128 channels), trainable BN, from scratch;
# - pixel decoder: 64 channels, 4 heads, FFN 256, mmdet's 6 deformable encoder layers on 3
#   levels; GN keeps 32 groups;
# - transformer decoder: 3 layers (ClustSeg compact has 3 cross-attention layers), 64-d,
#   4 heads, FFN 256; mmdet's 100 queries;
# - 2048 uncertainty-sampled points per mask (mmdet: 12544 for 1024^2 crops; the compact
#   ClustSeg panoptic model samples 2048), mmdet's oversample / importance ratios;
# - data preprocessor: ClustSeg's (padding to a multiple of 32; no BatchFixedSizePad to
#   1024^2), so that both models see the same batches.
# The benchmark config sets the class counts (head, class weights, fusion head).
num_things_classes = 80
num_stuff_classes = 53
num_classes = num_things_classes + num_stuff_classes
feat = 64
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='ClustSegDetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    pad_mask=True,
    mask_pad_value=0,
    pad_seg=True,
    seg_pad_value=255)
model = dict(
    type='Mask2Former',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet', depth=18, stem_channels=16, base_channels=16, num_stages=4,
        out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False,
        style='pytorch', init_cfg=None),
    panoptic_head=dict(
        type='Mask2FormerHead',
        in_channels=[16, 32, 64, 128],
        strides=[4, 8, 16, 32],
        feat_channels=feat,
        out_channels=feat,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=100,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='MSDeformAttnPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=feat, num_heads=4, num_levels=3,
                                       num_points=4, dropout=0.0, batch_first=True),
                    ffn_cfg=dict(embed_dims=feat, feedforward_channels=256, num_fcs=2,
                                 ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=feat // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=feat // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=4, dropout=0.0,
                                   batch_first=True),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=4, dropout=0.0,
                                    batch_first=True),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=256, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
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
        num_points=2048,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='HungarianAssigner',
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
