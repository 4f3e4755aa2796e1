# Compact ClustSeg superpixel model: ResNet-18 at 1/4 width, 3 decoder layers (one per stride
# 32/16/8), small enough to train on a CPU and to ship (< 1 MB of weights). No ImageNet
# weights exist for this width: it trains from scratch.
_base_ = ['./clustseg_superpixel_r50.py']
embed_dims = 64
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16, init_cfg=None),
    pixel_decoder=dict(in_channels=[16, 32, 64, 128], channels=[64, 64, 32, 32], num_heads=4),
    initializer=dict(in_channels=32, embed_dims=embed_dims, pos_dims=16),
    decoder=dict(in_channels=[64, 64, 32], embed_dims=embed_dims, num_heads=4, ffn_dims=256,
                 layer_levels=(0, 1, 2)),
    embed_head=dict(in_channels=32, embed_dims=16, stem_dims=16))
