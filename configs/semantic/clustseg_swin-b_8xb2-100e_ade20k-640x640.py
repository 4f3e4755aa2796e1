# ClustSeg on ADE20K with a Swin-B backbone (ImageNet-22K, 384 geometry: window 12), the paper's
# recipe (Table 3). The same backbone, file and parameter groups as the panoptic / instance
# Swin-B configs (configs/_base_/backbones): the official release converted on load, where
# MMSegmentation's Mask2Former config names OpenMMLab's pre-converted copy of the same weights.
_base_ = ['./clustseg_r50_8xb2-100e_ade20k-640x640.py',
          '../_base_/backbones/swin-b_in22k-384.py']
model = dict(
    backbone={{_base_.swin_b_backbone}},
    decode_head=dict(pixel_decoder=dict(in_channels={{_base_.swin_b_channels}})))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.swin_b_custom_keys}}))
