# Compact ClustSeg panoptic model for CPU runs and tests: ResNet-18 at 1/4 width, 3 decoder
# layers (one per stride 32/16/8, T = 3), 64-d centers, 2048 sampled points per matched mask.
_base_ = ['./clustseg_r50_panoptic.py']
embed_dims = 64
# no ImageNet weights exist for this width: from scratch, with trainable BN everywhere (the
# CPU runs of docs/model_zoo.md were trained so)
compact_norm_cfg = dict(_delete_=True, type='BN', requires_grad=True)
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16, norm_cfg=compact_norm_cfg,
                  norm_eval=False, init_cfg=None),
    panoptic_head=dict(
        pixel_decoder=dict(in_channels=[16, 32, 64, 128], channels=[64, 64, 32, 32],
                           num_heads=4, norm_cfg=compact_norm_cfg),
        initializer=dict(
            thing_initializer=dict(in_channels=64, embed_dims=embed_dims, pos_dims=16),
            stuff_initializer=dict(feat_dims=64, embed_dims=embed_dims, queue_size=64,
                                   samples_per_class=8)),
        decoder=dict(in_channels=[64, 64, 32], embed_dims=embed_dims, num_heads=4,
                     ffn_dims=256, layer_levels=(0, 1, 2)),
        mask_dims=embed_dims),
    train_cfg=dict(num_insdis_samples=1024, num_sem_samples=1024, mask_num_points=2048))
