# ClustSeg with a Swin-B backbone (ImageNet-22K, 384 geometry: window 12) on BSDS500
# superpixels. The paper's App. A names Swin-B as the backbone of its superpixel results
# (Fig. 5 on NYUv2, with the model trained on BSDS500 (App. A.4), and Fig. 10); §4.4 and Fig. 4
# name none. Everything else is the ResNet-50 recipe's (§4.4: lr 1e-4 for all parameters,
# cosine, 300k steps of 128 images as 8 GPUs x 8 x 2 accumulated, 480 x 480 crops, K from
# [50, 2500]); its norms (the ResNet-50 recipe's norm_decay_mult) and position tables train
# without weight decay, as in every Swin-B recipe here. docs/recipes.md lists the settings and
# their sources.
_base_ = ['./clustseg_r50_8xb16-300k_bsds500-superpixel.py',
          '../_base_/backbones/swin-b_in22k-384.py']
model = dict(
    backbone={{_base_.swin_b_backbone}},
    pixel_decoder=dict(in_channels={{_base_.swin_b_channels}}))
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'absolute_pos_embed': dict(decay_mult=0.0),
    'relative_position_bias_table': dict(decay_mult=0.0)}))
