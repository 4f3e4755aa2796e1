"""Pixel decoder: axial attention at strides 32 and 16, then fusion up to strides 8 and 4."""
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.axial_block import AxialBlock, ConvBlock, norm_layer, zero_padding
from ..layers.batch_padding import BatchPadding


def upsample2x(x, size, valid=None):
    """Bilinear 2x upsampling of ``x`` (B x C x h x w), cropped to ``size`` (H, W).

    A fine pixel r sits at coarse coordinate (r + 0.5) / 2 - 0.5, as for maps at strides s and
    s/2 of a conv net (if 2x is smaller than ``size``, a plain resize to ``size`` is used).
    With ``valid`` (B x h x w bool) padded coarse pixels get zero weight and the weights are
    renormalised (up(x * valid) / up(valid)), which equals the edge clamping of an image alone.
    Returns B x C x H x W (zero where no valid coarse pixel contributes).
    """
    h, w = int(size[0]), int(size[1])
    if 2 * x.shape[-2] < h or 2 * x.shape[-1] < w:
        up = lambda t: F.interpolate(t, size=(h, w), mode='bilinear', align_corners=False)
    else:
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode='bilinear',
                                     align_corners=False)[..., :h, :w]
    if valid is None:
        return up(x)
    m = valid[:, None].to(x.dtype)
    num, den = up(x * m), up(m)
    return num / den.clamp_min(1e-6) * (den > 0)


@MODELS.register_module()
class AxialPixelDecoder(BaseModule):
    """Six axial blocks (``num_blocks=(1, 5)``: one at stride 32, five at stride 16), then a
    residual conv block at stride 8 and at stride 4. Each stage = upsample previous stage
    (bilinear) + 1x1 lateral of the backbone level, then its blocks.

    Works for any input size: attention positions are computed per call (once per stage,
    :func:`~..layers.axial_block.axial_context`) and each stage is upsampled 2x and cropped
    to the lateral's size, so odd sizes need no padding.

    Padding (``pad_mask``): padded pixels are excluded as keys of both axial attentions,
    excluded from the upsampling (renormalised weights) and set to zero after every block, so
    that the 3x3 convs at the border of an image's valid region see zeros as for the image
    alone; an image's outputs on its valid region are then those it gets alone (given backbone
    features equal there).

    Args:
        in_channels (list[int]): backbone channels at strides 4, 8, 16, 32.
        channels (list[int]): output channels at strides 32, 16, 8, 4.
        num_heads (int): heads of the axial attention.
        num_blocks (tuple[int, int]): axial blocks at strides 32 and 16.
        norm_cfg (dict): normalisation of every conv (mmcv config: BN, SyncBN, GN, ...).

    Returns (forward): list of 4 maps, strides 32, 16, 8, 4 (B x channels[i] x H_i x W_i),
    zero on padded pixels.
    """

    def __init__(self, in_channels=(256, 512, 1024, 2048), channels=(512, 256, 256, 128),
                 num_heads=8, num_blocks=(1, 5), norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(init_cfg)
        if len(in_channels) != 4 or len(channels) != 4:
            raise ValueError('in_channels and channels must list 4 levels (strides 4..32 and '
                             f'32..4); got {in_channels} and {channels}')
        self.out_channels = list(channels)  # strides 32, 16, 8, 4
        rev_in = list(in_channels)[::-1]  # strides 32, 16, 8, 4
        self.laterals = nn.ModuleList()
        self.stages = nn.ModuleList()
        for i, (cin, cout) in enumerate(zip(rev_in, channels)):
            prev = channels[i - 1] if i else None
            self.laterals.append(nn.ModuleDict(dict(
                lat=nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False),
                                  norm_layer(norm_cfg, cout)),
                top=(nn.Sequential(nn.Conv2d(prev, cout, 1, bias=False),
                                   norm_layer(norm_cfg, cout))
                     if prev is not None else nn.Identity()))))
            if i < 2:
                blocks = [AxialBlock(cout, num_heads, norm_cfg=norm_cfg)
                          for _ in range(num_blocks[i])]
            else:
                blocks = [ConvBlock(cout, norm_cfg)]
            self.stages.append(nn.Sequential(*blocks))
        self.act = nn.GELU()

    def forward(self, feats, pad_mask=None):
        """Decodes.

        Args:
            feats: backbone outputs at strides 4, 8, 16, 32 (B x C_l x H_l x W_l).
            pad_mask: B x H0 x W0 bool, True = padding, at input resolution, or the
                :class:`~..layers.batch_padding.BatchPadding` of the batch (optional); each
                level's mask is its ``valid_at`` (``ceil(valid / stride)``; none at a level
                without padded pixels).

        Returns:
            list of maps at strides 32, 16, 8, 4 (zero on padding).
        """
        if len(feats) != 4:
            raise ValueError(f'AxialPixelDecoder expects 4 backbone levels, got {len(feats)}')
        padding = BatchPadding.of(pad_mask, feats[0])
        outs = []
        x = prev_valid = None
        for i, f in enumerate(feats[::-1]):
            valid = padding.valid_at(f.shape[-2:])
            y = self.laterals[i]['lat'](f)
            if x is not None:
                top = upsample2x(x, f.shape[-2:], prev_valid)
                y = y + self.laterals[i]['top'](top)
            x = zero_padding(self.act(y), valid)
            # the axial blocks of a stage share their positions and key masks
            context = padding.axial_at(f.shape[-2:], self.stages[i][0].attn_dims) \
                if i < 2 and len(self.stages[i]) else None
            for block in self.stages[i]:
                x = block(x, valid) if context is None else block(x, valid, context)
            outs.append(x)
            prev_valid = valid
        return outs
