# Compact ClustSeg instance model trained and evaluated on the 6 real COCO images of
# tests/data/coco_instance (CPU). AdamW 1e-3, 300 iterations, batch 2.
_base_ = [
    '../_base_/models/clustseg_compact_instance.py',
    '../_base_/datasets/coco_instance_embedded.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/clustseg_300it_embedded.py',
]
log_processor = dict(window_size=10)
