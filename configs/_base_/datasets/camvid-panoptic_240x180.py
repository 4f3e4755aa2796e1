# CamVid-panoptic (derived) as written by tools/dataset_converters/camvid.py into data/camvid:
# COCO panoptic PNGs + JSONs (annotations/panoptic_{train,val,test}.json, panoptic/{split}/)
# read unchanged by mmdet's panoptic dataset and PQ. Stuff: the 8 CamVid classes without
# instances; things: Car, Pedestrian, Bicyclist, whose instances are the 8-connected components
# of each class (DERIVED, not annotated: touching objects of one class are one instance;
# components under 16 pixels are void). Held-out benchmark of docs/model_zoo.md at half
# resolution, as camvid_240x180.py: random rescale of the 240 x 180 image by 0.5-2.0, 180 x 240
# crops, flips; evaluation on the half-size image, scored at full resolution by PQ. val
# selects, test is scored once.
dataset_type = 'ClustSegCocoPanopticDataset'
data_root = 'data/camvid/'
backend_args = None
thing_classes = ('Car', 'Pedestrian', 'Bicyclist')
stuff_classes = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence')
metainfo = dict(classes=thing_classes + stuff_classes, thing_classes=thing_classes,
                stuff_classes=stuff_classes)
scale = (240, 180)  # (w, h): half of 480 x 360
crop_size = (180, 240)  # (h, w)
train_pipeline = [
    dict(type='LoadImageChecked', to_float32=True),
    dict(type='LoadPanopticAnnotationsChecked', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=scale, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotationsChecked'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    sampler=dict(type='ResumableInfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo,
                 ann_file='annotations/panoptic_train.json',
                 data_prefix=dict(img='images/train/', seg='panoptic/train/'),
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline=train_pipeline, backend_args=backend_args))
val_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo, test_mode=True,
                 ann_file='annotations/panoptic_val.json',
                 data_prefix=dict(img='images/val/', seg='panoptic/val/'),
                 pipeline=test_pipeline, backend_args=backend_args))
test_dataloader = dict(
    batch_size=1, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, metainfo=metainfo, test_mode=True,
                 ann_file='annotations/panoptic_test.json',
                 data_prefix=dict(img='images/test/', seg='panoptic/test/'),
                 pipeline=test_pipeline, backend_args=backend_args))
val_evaluator = dict(type='ClustSegCocoPanopticMetric',
                     ann_file=data_root + 'annotations/panoptic_val.json',
                     seg_prefix=data_root + 'panoptic/val/', backend_args=backend_args)
test_evaluator = dict(type='ClustSegCocoPanopticMetric',
                      ann_file=data_root + 'annotations/panoptic_test.json',
                      seg_prefix=data_root + 'panoptic/test/', backend_args=backend_args)
