# The COCO-Stuff 164k sample shipped in tests/data/coco_stuff (13 train2017 + 8 val2017 real
# images, label maps converted to train ids by tools/dataset_converters/coco_stuff164k.py):
# CPU runs and tests. coco_stuff164k_640x640.py with another root, 256-scale geometry (random
# scale 0.5-2.0 of a 256 shorter side, 256 x 256 crops; test: shorter side 256), batch 2, no
# worker processes; paths are relative to the repository root. test = val.
_base_ = ['./coco_stuff164k_640x640.py']
data_root = 'tests/data/coco_stuff'
crop_size = (256, 256)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSemanticAnnotationsChecked'),
    dict(type='RandomResize', scale=(1024, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(1024, 256), keep_ratio=True),
    dict(type='LoadSemanticAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
