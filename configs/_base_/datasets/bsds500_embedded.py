# The 18-image BSDS500 subset shipped in tests/data/bsds500 (12 train, 6 val): smoke tests and
# CPU demos. bsds500_superpixel.py with another root, a 192 x 192 crop, batch 4, no worker
# processes; paths are relative to the repository root. There is no test split: test = val.
_base_ = ['./bsds500_superpixel.py']
data_root = 'tests/data/bsds500'
crop_size = (192, 192)
train_batch_size = 4

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadSuperpixelAnnotations', annotator='random', with_all=False),
    # independent h/v flips with p=0.5 each (see bsds500_superpixel.py)
    dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
         direction=['horizontal', 'vertical', 'diagonal']),
    dict(type='SuperpixelRandomResize', ratio_range=(0.5, 2.0)),
    dict(type='SuperpixelRandomCrop', crop_size=crop_size, pad_val=dict(img=0, seg=-1)),
    dict(type='PackSuperpixelInputs'),
]
_val_split = dict(img_path='images/val', seg_map_path='groundTruth/val')
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, data_prefix=_val_split))
test_dataloader = dict(num_workers=0, persistent_workers=False,
                       dataset=dict(data_root=data_root, data_prefix=_val_split))
