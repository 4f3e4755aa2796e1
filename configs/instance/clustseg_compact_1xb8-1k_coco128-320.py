# Held-out instance benchmark (docs/model_zoo.md "Held-out benchmarks"): the compact ClustSeg
# instance model (ResNet-18 at 1/4 width from scratch, 3 recurrent cross-attention layers at
# strides 32/16/8, T = 3, 100 image-adaptive centers) on the first 78 coco128-seg images at half
# COCO resolution, 1,000 iterations x batch 8, the last checkpoint scored once on the last 50
# (configs/_base_/datasets/coco128_instance_320.py). Its Mask2Former twin with the same
# backbone, data, batch and schedule: configs/reference/mask2former_compact_1xb8-1k_coco128-320.py.
_base_ = [
    '../_base_/models/clustseg_compact_instance.py',
    '../_base_/datasets/coco128_instance_320.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/heldout_cpu.py',
]
default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
log_processor = dict(window_size=25)
# the training-set validation (78 images, 100 RLE-encoded masks each) is the costly part on a
# CPU: every 250 iterations (checkpoints stay every 100)
train_cfg = dict(val_interval=250)
