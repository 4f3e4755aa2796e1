# Trains the compact model on the BSDS500 subset committed in tests/data (12 train images) for
# a few minutes on 2 CPU cores, then evaluates on its 6 val images (the README's main job).
_base_ = [
    '../_base_/models/clustseg_superpixel_compact.py',
    '../_base_/datasets/bsds500_embedded.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/superpixel_300k.py',
]
crop_size = (128, 128)
model = dict(train_cfg=dict(num_superpixels_range=(16, 100)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSuperpixelAnnotations', annotator='random', with_all=False),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='SuperpixelRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='SuperpixelRandomCrop', crop_size=crop_size, pad_val=dict(img=0, seg=-1)),
    dict(type='PackSuperpixelInputs'),
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=5e-4))
max_iters = 150
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(interval=max_iters, max_keep_ckpts=1, save_best=None))
