# Overfitting check of issue 7 (target PQ >= 90 on the 3 real images of tests/data/coco_panoptic):
# the embedded compact model at a 400-pixel longer side for training and testing (the embedded
# config's 320 caps what stride-4 masks can reach on the small / thin segments once upsampled to
# the original size), cosine over 1500 iterations, evaluation every 250.
_base_ = ['./clustseg_compact_embedded.py']
scale = (400, 400)
max_iters = 1500
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageChecked', to_float32=True),
    dict(type='LoadPanopticAnnotationsChecked', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]))
val_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotationsChecked'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=20),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=20, end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=250)
default_hooks = dict(checkpoint=dict(interval=250, max_keep_ckpts=2))
