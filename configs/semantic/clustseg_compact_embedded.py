# Compact ClustSeg semantic model trained on the 13 real COCO-Stuff train images in
# tests/data/coco_stuff and evaluated on its 8 val images (CPU; docs/model_zoo.md "Semantic").
# 171 classes, 256 x 256 crops, batch 2, AdamW 1e-3 with cosine decay.
_base_ = [
    '../_base_/models/clustseg_compact_semantic.py',
    '../_base_/datasets/coco_stuff_embedded.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/clustseg_semantic_embedded.py',
]
# semantic predictions are drawn by mmseg's visualizer (default_runtime.py: the superpixel one)
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
num_classes = 171
model = dict(decode_head=dict(num_classes=num_classes,
                              initializer=dict(num_classes=num_classes)))
log_processor = dict(window_size=10)
