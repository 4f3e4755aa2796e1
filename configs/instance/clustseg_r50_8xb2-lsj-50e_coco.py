# ClustSeg-R50, COCO instance segmentation, the paper's recipe: 8 GPUs x 2 images, LSJ, 50 epochs.
_base_ = [
    '../_base_/models/clustseg_r50_instance.py',
    '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/clustseg_50e_coco.py',
]
