# Swin-B for the paper configs (Tables 1-3), as MMDetection's Mask2Former Swin-B (in21k, 384)
# recipe: the official ImageNet-22K release, converted to mmdet's layout on load
# (convert_weights=True) by StrictSwinTransformer, which is mmdet's SwinTransformer with a load
# that fails on keys it would skip. Task configs take `swin_b_backbone`, `swin_b_channels` and
# `swin_b_custom_keys` through {{_base_.*}}.
swin_b_pretrained = ('https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
                     'swin_base_patch4_window12_384_22k.pth')
swin_b_depths = [2, 2, 18, 2]
swin_b_channels = [128, 256, 512, 1024]
swin_b_backbone = dict(
    _delete_=True,
    type='StrictSwinTransformer',
    pretrain_img_size=384,
    embed_dims=128,
    depths=swin_b_depths,
    num_heads=[4, 8, 16, 32],
    window_size=12,
    mlp_ratio=4,
    qkv_bias=True,
    qk_scale=None,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.3,
    patch_norm=True,
    out_indices=(0, 1, 2, 3),
    with_cp=False,
    convert_weights=True,
    frozen_stages=-1,
    init_cfg=dict(type='Pretrained', checkpoint=swin_b_pretrained))
# MMDetection's Mask2Former Swin parameter groups: backbone norms and position tables at the
# backbone's 0.1x lr without weight decay (added to the 'backbone' 0.1x group of the schedule)
swin_b_norm_multi = dict(lr_mult=0.1, decay_mult=0.0)
swin_b_custom_keys = {
    'backbone.patch_embed.norm': swin_b_norm_multi,
    'backbone.norm': swin_b_norm_multi,
    'absolute_pos_embed': swin_b_norm_multi,
    'relative_position_bias_table': swin_b_norm_multi,
}
swin_b_custom_keys.update({
    f'backbone.stages.{stage}.blocks.{block}.norm': swin_b_norm_multi
    for stage, num_blocks in enumerate(swin_b_depths) for block in range(num_blocks)
})
swin_b_custom_keys.update({
    f'backbone.stages.{stage}.downsample.norm': swin_b_norm_multi
    for stage in range(len(swin_b_depths) - 1)
})
