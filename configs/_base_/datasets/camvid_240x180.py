# CamVid (semantic; 11 classes + void as 255) as written by tools/dataset_converters/camvid.py
# into data/camvid: train 367 / val 101 / test 233 images of 480 x 360. Held-out benchmark of
# docs/model_zoo.md at HALF resolution (240 x 180), sized for a 2-core CPU: training crops of
# 180 x 240 after a random rescale of the half-size image by 0.5-2.0, flips and photometric
# distortion; evaluation on the half-size image, predictions resized back to 480 x 360 and
# scored against the full-resolution labels (ClustSegIoUMetric). val selects, test is scored
# once (test_dataloader).
dataset_type = 'ClustSegCamVidDataset'
data_root = 'data/camvid'
scale = (240, 180)  # (w, h): half of 480 x 360
crop_size = (180, 240)  # (h, w)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSemanticAnnotationsChecked'),
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadSemanticAnnotationsChecked'),
    dict(type='PackSegInputs'),
]

train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/val', seg_map_path='labels/val'),
                 pipeline=test_pipeline))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='images/test', seg_map_path='labels/test'),
                 pipeline=test_pipeline))
val_evaluator = dict(type='ClustSegIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
