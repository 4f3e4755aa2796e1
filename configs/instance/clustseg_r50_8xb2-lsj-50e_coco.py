# ClustSeg-R50, COCO instance segmentation, the paper's recipe: 8 GPUs x 2 images, LSJ, 50 epochs.
_base_ = [
    '../_base_/models/clustseg_r50_instance.py',
    '../_base_/datasets/coco_instance_lsj.py',
    '../_base_/det_runtime.py',
    '../_base_/schedules/clustseg_50e_coco.py',
]
# every training batch padded to the 1024 x 1024 LSJ crop (as mmdet's Mask2Former recipe), so
# batches have one shape; attention ignores the padding. Instance samples carry no semantic
# map, so none is padded (pad_seg=True fails on the first batch smaller than the crop)
image_size = (1024, 1024)
model = dict(data_preprocessor=dict(batch_augments=[
    dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
         mask_pad_value=0, pad_seg=False)]))
