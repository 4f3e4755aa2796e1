# Held-out semantic benchmark, reference: MMSegmentation's Mask2Former made compact
# (configs/_base_/models/mask2former_compact_semantic.py says how) with the data, batch,
# augmentation, optimizer and schedule of
# configs/semantic/clustseg_compact_1xb8-1k_camvid-240x180.py (CamVid at half resolution,
# 1,000 iterations x batch 8, best val mIoU kept, CamVid test scored once).
_base_ = [
    '../_base_/models/mask2former_compact_semantic.py',
    '../_base_/datasets/camvid_240x180.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/heldout_cpu.py',
]
default_hooks = dict(checkpoint=dict(save_best='mIoU'),
                     visualization=dict(type='SegVisualizationHook', draw=False))
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
log_processor = dict(window_size=25)
