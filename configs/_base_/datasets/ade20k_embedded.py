# The 3 real ADE20K validation images shipped in tests/data/ade20k, used for training and
# validation (an overfitting check: ADE20K has no public sample of its train split here).
# ade20k_640x640.py with another root and 256-scale geometry (random scale 0.5-2.0 of a 256
# shorter side, 256 x 256 crops; test: shorter side 256), batch 2, no worker processes; paths
# are relative to the repository root.
_base_ = ['./ade20k_640x640.py']
data_root = 'tests/data/ade20k'
crop_size = (256, 256)
_split = dict(img_path='images/validation', seg_map_path='annotations/validation')
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSemanticAnnotationsChecked', reduce_zero_label=True),
    dict(type='RandomResize', scale=(1024, 256), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(1024, 256), keep_ratio=True),
    dict(type='LoadSemanticAnnotationsChecked', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root, data_prefix=_split,
                                     pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, data_prefix=_split,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
