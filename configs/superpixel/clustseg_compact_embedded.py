# Trains the compact model on the BSDS500 subset committed in tests/data (12 train images) for
# about 4 minutes on 2 CPU cores (100 iterations), then evaluates on its 6 val images (the
# README's main job).
# 192 x 192 crops (from the base dataset config), batch 2, K drawn from [20, 150].
_base_ = [
    '../_base_/models/clustseg_superpixel_compact.py',
    '../_base_/datasets/bsds500_embedded.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/superpixel_300k.py',
]
model = dict(train_cfg=dict(num_superpixels_range=(20, 150), decoder_loss_weight=0.1))
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
max_iters = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
