# The 18-image BSDS500 subset shipped in tests/data/bsds500 (12 train, 6 val): smoke tests and
# CPU demos. Same pipelines as bsds500_superpixel.py with a 192 x 192 crop; paths are relative to
# the repository root (run tools/train.py from there). There is no test split: test = val.
dataset_type = 'BSDS500Dataset'
data_root = 'tests/data/bsds500'
crop_size = (192, 192)
train_batch_size = 4

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSuperpixelAnnotations', annotator='random', with_all=False),
    # independent h/v flips with p=0.5 each (see bsds500_superpixel.py)
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='SuperpixelRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='SuperpixelRandomCrop', crop_size=crop_size, pad_val=dict(img=0, seg=-1)),
    dict(type='PackSuperpixelInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSuperpixelAnnotations', annotator='first', with_all=True),
    dict(type='PackSuperpixelInputs'),
]

train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/train', seg_map_path='groundTruth/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='groundTruth/val'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='SuperpixelMetric')
test_evaluator = val_evaluator
