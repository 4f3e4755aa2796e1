"""ConvNeXt for dense prediction: timm's feature extractor with a LayerNorm on every output."""
from mmseg.models.backbones import TIMMBackbone
from timm.layers import LayerNorm2d

from clustseg.registry import MODELS


@MODELS.register_module()
class ConvNeXtFeatures(TIMMBackbone):
    """timm's ``convnext_*`` (``features_only``) whose outputs each pass a channel LayerNorm
    ``norm{i}`` (eps 1e-6), as the ConvNeXt that MMSegmentation's and MMDetection's configs
    build (mmpretrain's ``ConvNeXt`` with ``gap_before_final_norm=False``) and the official
    ConvNeXt segmentation backbone: the pyramid the pixel decoder reads is normalised.

    With mmpretrain's classifier files (converter ``mmpretrain_convnext_to_timm_features``)
    ``norm3`` is the classifier's final norm, loaded; ``norm0``-``norm2`` are new layers.

    Args:
        model_name (str): a timm ConvNeXt, e.g. ``'convnext_base'``.
        out_indices (tuple[int]): the stages returned (0-3, strides 4-32).
        **kwargs: timm's arguments (``drop_path_rate``, ...); nothing is downloaded
            (``pretrained=False``): ``init_cfg`` loads the weights.
    """

    def __init__(self, model_name, out_indices=(0, 1, 2, 3), init_cfg=None, **kwargs):
        super().__init__(model_name, features_only=True, pretrained=False,
                         out_indices=out_indices, init_cfg=init_cfg, **kwargs)
        self.out_indices = tuple(out_indices)
        for i, channels in zip(self.out_indices, self.timm_model.feature_info.channels()):
            self.add_module(f'norm{i}', LayerNorm2d(channels, eps=1e-6))

    def forward(self, x):
        feats = self.timm_model(x)  # B x C_i x H_i x W_i per stage
        # contiguous, as mmpretrain's: timm's LayerNorm2d returns a permuted view
        return [getattr(self, f'norm{i}')(f).contiguous()
                for i, f in zip(self.out_indices, feats)]
