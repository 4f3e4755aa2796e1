# The 3 real COCO panoptic val2017 images in tests/data/coco_panoptic (56 segments): training
# and evaluation on the same images (overfitting check, CPU demos). Paths are relative to the
# repository root. Images resized to a 320 longer side, no workers.
_base_ = ['./coco_panoptic_lsj.py']
data_root = 'tests/data/coco_panoptic/'
scale = (320, 320)
train_pipeline = [
    dict(type='LoadImageChecked', to_float32=True),
    dict(type='LoadPanopticAnnotationsChecked', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=scale, keep_ratio=True),
    dict(type='LoadPanopticAnnotationsChecked'),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
_split = dict(ann_file='annotations/panoptic_val2017.json',
              data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/'))
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline, **_split))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline, **_split))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='ClustSegCocoPanopticMetric',
         ann_file=data_root + 'annotations/panoptic_val2017.json',
         seg_prefix=data_root + 'annotations/panoptic_val2017/'),
    # thing segments of the same panoptic annotation in instance format (written by
    # tools/dataset_converters/panoptic_to_instances.py)
    dict(type='ClustSegCocoMetric', metric=['segm'], prefix='pan_instance',
         ann_file=data_root + 'annotations/instances_val2017.json'),
    dict(type='PanopticSemSegMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
