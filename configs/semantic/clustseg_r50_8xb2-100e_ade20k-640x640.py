# ClustSeg semantic segmentation on ADE20K (paper §4.3, Table 3) with an ImageNet-1K ResNet-50:
# K = 150 memory-bank class centers, 6 recurrent cross-attention layers (T = 3), CE x 5 + dice
# x 1 on every E-step; AdamW 1e-4 with the backbone at 0.1x, cosine, 100 epochs, batch 16 = 8
# GPUs x 2, scale jitter 0.5-2.0, 640 x 640 crops, test shorter side 640 (whole-image
# inference). docs/recipes.md lists every setting and its source.
_base_ = [
    '../_base_/models/clustseg_r50_semantic.py',
    '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/clustseg_semantic_100e_ade20k.py',
]
# semantic predictions are drawn by mmseg's visualizer (default_runtime.py: the superpixel one)
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
