# COCO panoptic (mmdet layout: data/coco/{train2017,val2017}, annotations/panoptic_*.json +
# annotations/panoptic_{train,val}2017/*.png), the paper's recipe (§4.1): large-scale jitter
# 0.1-2.0 with 1024 x 1024 crops for training, shorter side 800 for testing.
# mmdet's CocoPanopticDataset / LoadPanopticAnnotations / CocoPanopticMetric with checked inputs:
# a missing image or PNG, an unknown category id, PNG ids absent from segments_info, a PNG of
# another size or a truncated image is an error naming the file; `skip_bad=True` on a dataset
# (tools/test.py --skip-bad) skips such samples with a warning and the metric reports
# `num_skipped` (clustseg/datasets/coco_panoptic.py, coco_metrics.py).
dataset_type = 'ClustSegCocoPanopticDataset'
data_root = 'data/coco/'
image_size = (1024, 1024)
backend_args = None
train_pipeline = [
    dict(type='LoadImageChecked', to_float32=True, backend_args=backend_args),
    dict(type='LoadPanopticAnnotationsChecked', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageChecked', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadPanopticAnnotationsChecked', backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train2017.json',
        data_prefix=dict(img='train2017/', seg='annotations/panoptic_train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
# PQ / PQ^Th / PQ^St; AP^Th_pan (mask AP of the panoptic model's instance output on the thing
# segments; COCO's instances_val2017.json, or tools/dataset_converters/panoptic_to_instances.py
# for other panoptic sets); mIoU_pan (its class map): the columns of the paper's Table 1
val_evaluator = [
    dict(type='ClustSegCocoPanopticMetric',
         ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/',
         backend_args=backend_args),
    dict(type='ClustSegCocoMetric', metric=['segm'], prefix='pan_instance',
         ann_file=data_root + 'annotations/instances_val2017.json', backend_args=backend_args),
    dict(type='PanopticSemSegMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
