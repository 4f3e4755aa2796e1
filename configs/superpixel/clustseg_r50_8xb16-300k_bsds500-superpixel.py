# Paper recipe (ClustSeg §4.4, App. A.4): ResNet-50, lr 1e-4, batch 128 (8 GPUs x 16),
# 300k iterations, 480 x 480 crops, flips + scale jitter [0.5, 2], K drawn from [50, 2500].
# Trains from scratch unless model.backbone.init_cfg names a local checkpoint.
_base_ = [
    '../_base_/models/clustseg_superpixel_r50.py',
    '../_base_/datasets/bsds500_superpixel.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/superpixel_300k.py',
]
