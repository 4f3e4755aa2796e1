# Compact ClustSeg superpixel model trained on one device (CPU-friendly): 160 x 160 crops,
# batch 4, K drawn from [30, 200] (superpixels of 128..850 px, the sizes of K = 180..1200 on a
# 481 x 321 image), AdamW 5e-4, 1.2k iterations. This is the shipped model-zoo config.
# The decoder's E-steps (strides 32/16/8) are supervised with weight 0.1 instead of 1: on
# 160 x 160 crops the stride-32 map has 25 pixels for up to 200 centers, so its assignments are
# not superpixels and, at full weight, their loss is ~20x the full-resolution one.
_base_ = [
    '../_base_/models/clustseg_superpixel_compact.py',
    '../_base_/datasets/bsds500_superpixel.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/superpixel_300k.py',
]
crop_size = (160, 160)
model = dict(train_cfg=dict(num_superpixels_range=(30, 200), decoder_loss_weight=0.1))
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSuperpixelAnnotations', annotator='random', with_all=False),
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='SuperpixelRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='SuperpixelRandomCrop', crop_size=crop_size, pad_val=dict(img=0, seg=-1)),
    dict(type='PackSuperpixelInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=1, persistent_workers=True,
                        dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1, persistent_workers=True)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=5e-4))
max_iters = 1200
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=100, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(interval=100, max_keep_ckpts=2, save_best='superpixel/ASA'))
