# Held-out instance benchmark, reference: MMDetection's Mask2Former instance model (mmdet's
# mask2former_r50_8xb2-lsj-50e_coco.py: the panoptic model without stuff classes or panoptic
# output) made compact as configs/_base_/models/mask2former_compact_panoptic.py, with the data,
# batch, augmentation, optimizer and schedule of
# configs/instance/clustseg_compact_1xb8-1k_coco128-320.py (coco128-seg, 1,000 iterations x
# batch 8, the last checkpoint scored once on the 50 held-out images).
_base_ = [
    '../_base_/models/mask2former_compact_panoptic.py',
    '../_base_/datasets/coco128_instance_320.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/heldout_cpu.py',
]
num_things_classes = 80
num_stuff_classes = 0
num_classes = num_things_classes + num_stuff_classes
model = dict(
    data_preprocessor=dict(pad_seg=False),
    panoptic_head=dict(num_things_classes=num_things_classes,
                       num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes),
    test_cfg=dict(panoptic_on=False))
default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
log_processor = dict(window_size=25)
# the training-set validation (78 images, 100 RLE-encoded masks each) is the costly part on a
# CPU: every 250 iterations (checkpoints stay every 100)
train_cfg = dict(val_interval=250)
