# ClustSeg on ADE20K with a ConvNeXt-B backbone (ImageNet-22K), the paper's recipe (Table 3).
# Backbone and its parameter groups: configs/_base_/backbones.
_base_ = ['./clustseg_r50_8xb2-100e_ade20k-640x640.py',
          '../_base_/backbones/convnext-b_in22k.py']
model = dict(
    # test images padded to a multiple of 32 (the head crops its output back): ConvNeXt's stem
    # and downsampling layers round odd sizes down, where ResNet and Swin round up, so the
    # unpadded stride-32 map of a 640 x 853 image would cover 832 columns and be stretched
    data_preprocessor=dict(test_cfg=dict(size_divisor=32)),
    backbone={{_base_.convnext_b_backbone}},
    decode_head=dict(pixel_decoder=dict(in_channels={{_base_.convnext_b_channels}})))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={{_base_.convnext_b_custom_keys}}))
