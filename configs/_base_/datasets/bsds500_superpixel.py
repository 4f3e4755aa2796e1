# BSDS500 superpixels (paper §4.4): train on 'train' (200 images), validate on 'val' (100),
# test on the held-out 'test' split (200; get it from the BSR release into data/bsds500).
# Layout: data/bsds500/images/<split>/<id>.jpg + groundTruth/<split>/<id>.mat.
dataset_type = 'BSDS500Dataset'
data_root = 'data/bsds500'
crop_size = (480, 480)
train_batch_size = 16  # per GPU; 8 GPUs x 16 = the paper's batch of 128

train_pipeline = [
    # LoadImageChecked: mmcv's LoadImageFromFile, but truncated, empty and non-image files are
    # errors naming the file (clustseg/datasets/image_io.py)
    dict(type='LoadImageChecked'),
    dict(type='LoadSuperpixelAnnotations', annotator='random', with_all=False),
    # Independent horizontal and vertical flips, p=0.5 each, as one draw: none / h / v / both
    # ('diagonal') with p=0.25 each. A single transform keeps `flip_direction` right (two
    # RandomFlip transforms would each overwrite it).
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    # Ratio of each image's own size, int64 labels kept (clustseg/datasets/transforms/geometric.py).
    dict(type='SuperpixelRandomResize', ratio_range=(0.5, 2.0)),
    # Random crop; smaller images are padded with image 0 / label -1 (ignored).
    dict(type='SuperpixelRandomCrop', crop_size=crop_size, pad_val=dict(img=0, seg=-1)),
    dict(type='PackSuperpixelInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSuperpixelAnnotations', annotator='first', with_all=True),
    dict(type='PackSuperpixelInputs'),  # original size: predictions are scored at full res
]

train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/train', seg_map_path='groundTruth/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val', seg_map_path='groundTruth/val'),
        test_mode=True,
        # True: warn about unreadable samples, drop them and count them in the metrics
        # (tools/test.py --skip-bad); False: a bad sample is an error naming its file
        skip_bad=False,
        pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/test', seg_map_path='groundTruth/test'),
        test_mode=True,
        skip_bad=False,
        pipeline=test_pipeline))
val_evaluator = dict(type='SuperpixelMetric')
test_evaluator = val_evaluator
