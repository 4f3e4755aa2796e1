# Schedule of the held-out CPU benchmarks (docs/model_zoo.md "Held-out benchmarks"), shared
# by ClustSeg and the Mask2Former references so that both get the same budget: AdamW 1e-3
# (weight decay 1e-4, none on norms, one lr everywhere: the compact backbones train from
# scratch), gradient norm clipped at 1, 50-iteration linear warm-up then cosine to 0 over
# 1,000 iterations, validation every 100; the benchmark config names the selection metric; a
# checkpoint is written at every validation (kill-safe, resumable with --resume) and the best
# by the val metric is kept.
max_iters = 1000
interval = 100
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='MergedGroupsOptimWrapperConstructor',  # as clustseg_50e_coco.py
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4, eps=1e-8, betas=(0.9, 0.999),
                   fused=True),  # as clustseg_50e_coco.py
    paramwise_cfg=dict(norm_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=50, end=max_iters)
]
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='SafeCheckpointHook', by_epoch=False, interval=interval,
                    max_keep_ckpts=1, save_last=True, rule='greater'),
    sampler_seed=dict(type='DistSamplerSeedHook'))
