# ClustSeg-R50, COCO panoptic, the paper's recipe (Table 1): 8 GPUs x 2 images, LSJ, 50 epochs
# (docs/recipes.md lists every setting and its source).
_base_ = [
    '../_base_/models/clustseg_r50_panoptic.py',
    '../_base_/datasets/coco_panoptic_lsj.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/clustseg_50e_coco.py',
]
# every training batch padded to the 1024 x 1024 LSJ crop (as mmdet's Mask2Former recipe), so
# batches have one shape; attention ignores the padding
image_size = (1024, 1024)
model = dict(data_preprocessor=dict(batch_augments=[
    dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
         mask_pad_value=0, pad_seg=True, seg_pad_value=255)]))
