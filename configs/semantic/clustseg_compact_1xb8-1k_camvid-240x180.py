# Held-out semantic benchmark (docs/model_zoo.md "Held-out benchmarks"): the compact ClustSeg
# semantic model (ResNet-18 at 1/4 width from scratch, 3 recurrent cross-attention layers at
# strides 32/16/8, T = 3, K = 11 memory-bank class centers) trained on CamVid train at half
# resolution, 1,000 iterations x batch 8 (22 epochs), validated every 100 on CamVid val (the
# best mIoU is kept), scored once on CamVid test. Its Mask2Former twin with the same backbone,
# data, batch and schedule: configs/reference/mask2former_compact_1xb8-1k_camvid-240x180.py.
_base_ = [
    '../_base_/models/clustseg_compact_semantic.py',
    '../_base_/datasets/camvid_240x180.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/heldout_cpu.py',
]
num_classes = 11
model = dict(decode_head=dict(num_classes=num_classes,
                              initializer=dict(num_classes=num_classes)))
default_hooks = dict(checkpoint=dict(save_best='mIoU'),
                     visualization=dict(type='SegVisualizationHook', draw=False))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
log_processor = dict(window_size=25)
