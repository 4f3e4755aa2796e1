# Superpixel schedule: AdamW at the paper's lr 1e-4 (§4.4), 300k iterations, linear warm-up then
# poly decay (the compact configs' schedule). The paper configs replace this scheduler list as a
# whole, warm-up included, with App. A's cosine annealing from the first step
# (configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=1e-4,
                   fused=True),  # as clustseg_50e_coco.py
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=1000, end=300000, by_epoch=False)
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=300000, val_interval=10000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=10000, max_keep_ckpts=3,
                    save_best='superpixel/ASA', rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook', draw=False))
# mmengine scales by GPUs x per-GPU batch, without the accumulated steps: the recipe's 128
# images per step are 8 GPUs x 8 x 2 accumulated, so the base is 64 (tools/train.py
# --auto-scale-lr; the accumulation stays 2)
auto_scale_lr = dict(enable=False, base_batch_size=64)
