"""Backbones come from mmdet/mmseg/timm registries (e.g. mmdet ``ResNet``); here
:class:`StrictSwinTransformer` is mmdet's Swin with a checked pretrained load and
:class:`ConvNeXtFeatures` timm's ConvNeXt with the per-output norms of OpenMMLab's."""
from .convnext_features import ConvNeXtFeatures
from .strict_swin import StrictSwinTransformer

__all__ = ['ConvNeXtFeatures', 'StrictSwinTransformer']
