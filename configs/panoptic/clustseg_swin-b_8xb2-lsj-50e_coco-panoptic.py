# ClustSeg with a Swin-B backbone (ImageNet-22K, 384 geometry: window 12), COCO panoptic, the
# paper's recipe (Table 1). Backbone and its parameter groups: configs/_base_/backbones.
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco-panoptic.py',
          '../_base_/backbones/swin-b_in22k-384.py']
model = dict(
    backbone={{_base_.swin_b_backbone}},
    panoptic_head=dict(pixel_decoder=dict(in_channels={{_base_.swin_b_channels}})))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_b_custom_keys}}))
