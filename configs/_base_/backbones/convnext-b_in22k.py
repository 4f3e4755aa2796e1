# ConvNeXt-B for the paper configs (Tables 1-3): timm's convnext_base with a LayerNorm on each
# output (ConvNeXtFeatures: the pyramid of the ConvNeXt that MMSegmentation's and MMDetection's
# ConvNeXt configs build), initialised from the ImageNet-22K weights that MMSegmentation's
# ConvNeXt-B configs name (an mmpretrain-layout file), whose keys are mapped to timm's on load
# (converter mmpretrain_convnext_to_timm_features: the classifier's final norm becomes norm3,
# its head is the only part left unused; norm0-norm2 are new). Task configs take
# `convnext_b_backbone`, `convnext_b_channels` and `convnext_b_custom_keys` through {{_base_.*}}.
convnext_b_pretrained = ('https://download.openmmlab.com/mmclassification/v0/convnext/'
                         'downstream/convnext-base_3rdparty_in21k_20220301-262fd037.pth')
convnext_b_depths = [3, 3, 27, 3]
convnext_b_channels = [128, 256, 512, 1024]
convnext_b_backbone = dict(
    _delete_=True,
    type='ConvNeXtFeatures',
    model_name='convnext_base',
    out_indices=(0, 1, 2, 3),
    drop_path_rate=0.4,
    init_cfg=dict(type='Pretrained', checkpoint=convnext_b_pretrained,
                  converter='mmpretrain_convnext_to_timm_features', new_keys=[r'^norm[0-2]\.']))
# norms and layer-scale vectors of the backbone at its 0.1x lr without weight decay (as the
# Swin groups; MMSegmentation's ConvNeXt recipe also exempts every 1-D parameter from decay)
convnext_b_norm_multi = dict(lr_mult=0.1, decay_mult=0.0)
convnext_b_custom_keys = {'backbone.timm_model.stem_1': convnext_b_norm_multi,
                          'backbone.norm': convnext_b_norm_multi}  # the output norms
convnext_b_custom_keys.update({
    f'backbone.timm_model.stages_{stage}.downsample.0': convnext_b_norm_multi
    for stage in range(1, len(convnext_b_depths))
})
convnext_b_custom_keys.update({
    f'backbone.timm_model.stages_{stage}.blocks.{block}.{name}': convnext_b_norm_multi
    for stage, num_blocks in enumerate(convnext_b_depths) for block in range(num_blocks)
    for name in ('norm', 'gamma')
})
