# ADE20K (ADEChallengeData2016, 150 classes) for semantic segmentation, paper recipe (§4.3):
# random scale jitter 0.5-2.0, 640 x 640 crops, batch 16 = 8 GPUs x 2; test: shorter side 640
# (mmseg's Resize to (2560, 640) with kept ratio), no test-time augmentation.
# Layout (mmseg): data/ade/ADEChallengeData2016/{images,annotations}/{training,validation};
# label 0 ("other") is ignored (reduce_zero_label: 1..150 -> 0..149, 0 -> 255).
# ClustSeg*Dataset: mmseg's class with skip_bad (tools/test.py --skip-bad); its label maps are
# read by LoadSemanticAnnotationsChecked (mmseg's LoadAnnotations, but empty / truncated /
# colour / wrong-size maps and ids outside the classes are errors naming the file)
dataset_type = 'ClustSegADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
crop_size = (640, 640)
train_batch_size = 2  # per GPU
train_pipeline = [
    # LoadImageChecked: mmcv's LoadImageFromFile, but bad files are errors naming the file
    dict(type='LoadImageChecked'),
    dict(type='LoadSemanticAnnotationsChecked', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    # annotations after the resize: predictions are resized back to the original size
    dict(type='LoadSemanticAnnotationsChecked', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/validation', seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClustSegIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
