# Short CPU schedule of the embedded panoptic / instance configs (a few real images):
# AdamW 1e-3, 300 iterations, cosine after a 20-iteration warm-up, one evaluation at the end.
_base_ = ['./clustseg_50e_coco.py']
max_iters = 300
# one lr for every parameter (no backbone multiplier: the compact backbone trains from scratch)
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4), clip_grad=dict(max_norm=1.0),
                     paramwise_cfg=dict(_delete_=True, norm_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=20, end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(logger=dict(interval=10),
                     checkpoint=dict(interval=max_iters, max_keep_ckpts=1))
