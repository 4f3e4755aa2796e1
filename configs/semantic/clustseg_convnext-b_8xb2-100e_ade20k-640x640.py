# ClustSeg on ADE20K with a ConvNeXt-B backbone (timm, through mmseg's TIMMBackbone), the
# paper's recipe. timm never downloads here (pretrained=False); to start from weights you have
# locally: model.backbone.init_cfg=dict(type='Pretrained', checkpoint='/path/convnext_b.pth').
_base_ = ['./clustseg_r50_8xb2-100e_ade20k-640x640.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='TIMMBackbone',
        model_name='convnext_base',
        features_only=True,
        pretrained=False,
        out_indices=(0, 1, 2, 3),
        drop_path_rate=0.4),
    decode_head=dict(pixel_decoder=dict(in_channels=[128, 256, 512, 1024])))
