# Held-out panoptic benchmark, reference: MMDetection's Mask2Former made compact
# (configs/_base_/models/mask2former_compact_panoptic.py says how) with the data, batch,
# augmentation, optimizer and schedule of
# configs/panoptic/clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py (CamVid-panoptic at
# half resolution, 1,000 iterations x batch 8, best val PQ kept, test scored once).
_base_ = [
    '../_base_/models/mask2former_compact_panoptic.py',
    '../_base_/datasets/camvid-panoptic_240x180.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/heldout_cpu.py',
]
num_things_classes = 3
num_stuff_classes = 8
num_classes = num_things_classes + num_stuff_classes
model = dict(
    panoptic_head=dict(num_things_classes=num_things_classes,
                       num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes))
default_hooks = dict(checkpoint=dict(save_best='coco_panoptic/PQ'),
                     visualization=dict(type='DetVisualizationHook'))
log_processor = dict(window_size=25)
