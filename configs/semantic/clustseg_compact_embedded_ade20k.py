# Compact ClustSeg semantic model trained and evaluated on the 3 real ADE20K images in
# tests/data/ade20k (CPU; an overfitting check). 150 classes, 256 x 256 crops, batch 2.
_base_ = [
    '../_base_/models/clustseg_compact_semantic.py',
    '../_base_/datasets/ade20k_embedded.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/clustseg_semantic_embedded.py',
]
# semantic predictions are drawn by mmseg's visualizer (default_runtime.py: the superpixel one)
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
log_processor = dict(window_size=10)
