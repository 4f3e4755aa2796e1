# Reference: mmdet's Mask2Former (panoptic) made as compact as
# configs/panoptic/clustseg_compact_embedded.py (configs/_base_/models/mask2former_compact_panoptic.py
# says how) and trained on the same data, batch, optimizer and schedule (the same bases), for
# like-for-like comparisons (tools/analysis_tools/benchmark.py). Evaluation: PQ only (the
# ClustSeg config adds instance and semantic metrics of its panoptic output). 512 sampled mask
# points instead of the base's 2048: the count docs/benchmark.md's CPU rows were measured with.
_base_ = [
    '../_base_/models/mask2former_compact_panoptic.py',
    '../_base_/datasets/coco_panoptic_embedded.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/clustseg_300it_embedded.py',
]
model = dict(train_cfg=dict(num_points=512))
val_evaluator = dict(_delete_=True, type='ClustSegCocoPanopticMetric',
                     ann_file='tests/data/coco_panoptic/annotations/panoptic_val2017.json',
                     seg_prefix='tests/data/coco_panoptic/annotations/panoptic_val2017/')
test_evaluator = val_evaluator
log_processor = dict(window_size=10)
