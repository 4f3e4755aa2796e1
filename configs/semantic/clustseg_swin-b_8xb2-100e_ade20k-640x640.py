# ClustSeg on ADE20K with a Swin-B backbone (mmseg's SwinTransformer, 384-pretraining geometry:
# window 12), the paper's recipe. Trains from scratch here; to start from ImageNet weights you
# have locally: model.backbone.init_cfg=dict(type='Pretrained', checkpoint='/path/swin_b.pth').
_base_ = ['./clustseg_r50_8xb2-100e_ade20k-640x640.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        pretrain_img_size=384,
        embed_dims=128,
        depths=[2, 2, 18, 2],
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
        init_cfg=None),
    decode_head=dict(pixel_decoder=dict(in_channels=[128, 256, 512, 1024])))
