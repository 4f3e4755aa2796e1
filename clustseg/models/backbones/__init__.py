"""Backbones come from mmdet/mmseg/timm registries (e.g. mmdet ``ResNet``, mmseg
``TIMMBackbone``); :class:`StrictSwinTransformer` is mmdet's Swin with a checked pretrained load."""
from .strict_swin import StrictSwinTransformer

__all__ = ['StrictSwinTransformer']
