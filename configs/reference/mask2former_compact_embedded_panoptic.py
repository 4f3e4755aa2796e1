# Reference: mmdet's Mask2Former (panoptic, R50 LSJ config inherited from mmdet) made as compact
# as configs/panoptic/clustseg_compact_embedded.py and trained on the same data, batch,
# optimizer and schedule, for like-for-like comparisons (tools/analysis_tools/benchmark.py).
# Choices (vs. mmdet's R50 config):
# - backbone: ClustSeg compact's ResNet-18 at 1/4 width (16..128 channels), trainable BN
#   (norm_eval False: random init, no ImageNet statistics), init_cfg None (no download).
# - pixel decoder (MSDeformAttnPixelDecoder): 64 channels, 4 heads, FFN 256, 6 encoder layers
#   (mmdet's depth), 3 levels. GN keeps 32 groups (2 channels each).
# - transformer decoder: 3 layers (ClustSeg compact has 3 cross-attention layers), 64-d,
#   4 heads, FFN 256; mmdet's 100 queries (ClustSeg: 75 thing + 53 stuff centers).
# - losses (class CE + point-sampled mask BCE and dice), Hungarian matcher, panoptic fusion,
#   test_cfg: mmdet's defaults, with 512 sampled mask points instead of 12544 (CPU-sized).
# - evaluation: PQ (ClustSegCocoPanopticMetric) on the 3 images.
# - data preprocessor: BatchFixedSizePad removed (mmdet pads to 1024 x 1024); batches are
#   padded to a multiple of 32 as for ClustSeg.
# - data / batch / optimizer (AdamW 1e-3, no backbone lr multiplier) / 300-iteration schedule /
#   runtime: those of configs/panoptic/clustseg_compact_embedded.py, written out below since
#   mmengine forbids keys duplicated among bases (tests/test_tools/test_benchmark.py checks
#   they stay equal).
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py']
custom_imports = dict(imports=['clustseg'], allow_failed_imports=False)
feat = 64
model = dict(
    data_preprocessor=dict(batch_augments=None),
    backbone=dict(depth=18, stem_channels=16, base_channels=16,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, init_cfg=None),
    panoptic_head=dict(
        in_channels=[16, 32, 64, 128],
        feat_channels=feat,
        out_channels=feat,
        pixel_decoder=dict(
            encoder=dict(layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=4),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=256))),
            positional_encoding=dict(num_feats=feat // 2)),
        positional_encoding=dict(num_feats=feat // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=feat, num_heads=4),
                cross_attn_cfg=dict(embed_dims=feat, num_heads=4),
                ffn_cfg=dict(embed_dims=feat, feedforward_channels=256)))),
    train_cfg=dict(num_points=512))

# ---- data: configs/_base_/datasets/coco_panoptic_{lsj,embedded}.py --------------------------
dataset_type = 'ClustSegCocoPanopticDataset'
data_root = 'tests/data/coco_panoptic/'
backend_args = None
scale = (320, 320)
train_pipeline = [
    dict(type='LoadImageChecked', to_float32=True),
    dict(type='LoadPanopticAnnotationsChecked', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotationsChecked'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
_split = dict(ann_file='annotations/panoptic_val2017.json',
              data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'))
train_dataloader = dict(
    _delete_=True,
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline=train_pipeline, backend_args=backend_args, **_split))
val_dataloader = dict(
    _delete_=True,
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, test_mode=True,
                 pipeline=test_pipeline, backend_args=backend_args, **_split))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='ClustSegCocoPanopticMetric',
    ann_file=data_root + 'annotations/panoptic_val2017.json',
    seg_prefix=data_root + 'annotations/panoptic_val2017/',
    backend_args=backend_args)
test_evaluator = val_evaluator

# ---- schedule: configs/_base_/schedules/clustseg_{50e_coco,300it_embedded}.py ----------------
max_iters = 300
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4, eps=1e-8, betas=(0.9, 0.999)),
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=20, end=max_iters)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=max_iters,
                    max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
auto_scale_lr = dict(enable=False, base_batch_size=16)

# ---- runtime: configs/_base_/det_runtime.py ----------------------------------------------------
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
randomness = dict(seed=0)
