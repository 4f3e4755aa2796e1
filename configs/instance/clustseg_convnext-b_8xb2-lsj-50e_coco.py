# ClustSeg with a ConvNeXt-B backbone (ImageNet-22K), COCO instance segmentation, the paper's
# recipe (Table 2). Backbone and its parameter groups: configs/_base_/backbones.
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco.py', '../_base_/backbones/convnext-b_in22k.py']
model = dict(
    backbone={{_base_.convnext_b_backbone}},
    panoptic_head=dict(pixel_decoder=dict(in_channels={{_base_.convnext_b_channels}})))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.convnext_b_custom_keys}}))
