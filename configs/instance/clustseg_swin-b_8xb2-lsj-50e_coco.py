# ClustSeg Swin-B, COCO instance segmentation, the paper's recipe (see the panoptic Swin-B config).
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco.py']
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', pretrain_img_size=384, embed_dims=128,
        depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], window_size=12, mlp_ratio=4,
        qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.3,
        patch_norm=True, out_indices=(0, 1, 2, 3), with_cp=False, convert_weights=False,
        init_cfg=None),
    panoptic_head=dict(pixel_decoder=dict(in_channels=[128, 256, 512, 1024])))
