# Compact ClustSeg panoptic model trained and evaluated on the 3 real COCO panoptic images in
# tests/data/coco_panoptic (CPU; overfitting check). AdamW 1e-3, 300 iterations, batch 2.
_base_ = [
    '../_base_/models/clustseg_compact_panoptic.py',
    '../_base_/datasets/coco_panoptic_embedded.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/clustseg_300it_embedded.py',
]
log_processor = dict(window_size=10)
