# coco128-seg (128 COCO train2017 images, 80 classes) as written by
# tools/dataset_converters/coco128_seg.py into data/coco128: images/ and
# annotations/instances_{train,test}.json, split by sorted image id (the first 78 train, the
# last 50 held out). Held-out instance benchmark of docs/model_zoo.md at half COCO resolution
# (longer side 320): random rescale by 0.5-2.0, 320 x 320 crops, flips; evaluation on the
# 320-side image, masks scored at full resolution (COCO mask AP). There is no val split: the
# schedule is fixed, the last checkpoint is scored once on the 50 held-out images, and the
# validations during training run on the 78 training images (how well the model fits them).
dataset_type = 'ClustSegCocoDataset'
data_root = 'data/coco128/'
backend_args = None
scale = (320, 320)
train_pipeline = [
    dict(type='LoadImageChecked', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=scale, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageChecked', to_float32=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='images/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, test_mode=True,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='images/'),
                 pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, test_mode=True,
                 ann_file='annotations/instances_test.json', data_prefix=dict(img='images/'),
                 pipeline=test_pipeline, backend_args=backend_args))
val_evaluator = dict(type='ClustSegCocoMetric', metric=['segm'],
                     ann_file=data_root + 'annotations/instances_train.json',
                     backend_args=backend_args)
test_evaluator = dict(type='ClustSegCocoMetric', metric=['segm'],
                      ann_file=data_root + 'annotations/instances_test.json',
                      backend_args=backend_args)
