"""Backbones come from mmdet/mmseg/timm registries (e.g. mmdet ``ResNet``, ``SwinTransformer``)."""
