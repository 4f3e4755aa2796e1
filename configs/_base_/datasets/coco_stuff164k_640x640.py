# COCO-Stuff 164k (171 classes: 80 things + 91 stuff; mmseg's COCOStuffDataset), the ADE20K
# recipe of the paper (§4.3): scale jitter 0.5-2.0, 640 x 640 crops, batch 16 = 8 GPUs x 2;
# test: shorter side 640. Layout (mmseg): data/coco_stuff164k/images/{train2017,val2017}/*.jpg
# and annotations/{train2017,val2017}/*_labelTrainIds.png, written from the official
# stuffthingmaps by tools/dataset_converters/coco_stuff164k.py (ids 0..170, 255 = unlabeled).
# ClustSeg*Dataset: mmseg's class with skip_bad (tools/test.py --skip-bad); its label maps are
# read by LoadSemanticAnnotationsChecked (mmseg's LoadAnnotations, but empty / truncated /
# colour / wrong-size maps and ids outside the classes are errors naming the file)
dataset_type = 'ClustSegCOCOStuffDataset'
data_root = 'data/coco_stuff164k'
crop_size = (640, 640)
train_batch_size = 2  # per GPU
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSemanticAnnotationsChecked'),
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadSemanticAnnotationsChecked'),
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
        data_prefix=dict(img_path='images/train2017', seg_map_path='annotations/train2017'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='ClustSegIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
