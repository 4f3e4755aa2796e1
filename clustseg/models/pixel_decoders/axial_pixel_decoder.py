"""Pixel decoder: axial attention at strides 32 and 16, then fusion up to strides 8 and 4."""
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.axial_block import AxialBlock, ConvBlock, norm_layer


@MODELS.register_module()
class AxialPixelDecoder(BaseModule):
    """Six axial blocks (``num_blocks=(1, 5)``: one at stride 32, five at stride 16), then a
    residual conv block at stride 8 and at stride 4. Each stage = upsample previous stage
    (bilinear) + 1x1 lateral of the backbone level, then its blocks.

    Works for any input size: attention positions are computed per call and stages are
    resized to the lateral's exact size, so odd sizes need no padding.

    Args:
        in_channels (list[int]): backbone channels at strides 4, 8, 16, 32.
        channels (list[int]): output channels at strides 32, 16, 8, 4.
        num_heads (int): heads of the axial attention.
        num_blocks (tuple[int, int]): axial blocks at strides 32 and 16.
        norm_cfg (dict): normalisation of every conv (mmcv config: BN, SyncBN, GN, ...).

    Returns (forward): list of 4 maps, strides 32, 16, 8, 4 (B x channels[i] x H_i x W_i).
    """

    def __init__(self, in_channels=(256, 512, 1024, 2048), channels=(512, 256, 256, 128),
                 num_heads=8, num_blocks=(1, 5), norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(init_cfg)
        if len(in_channels) != 4 or len(channels) != 4:
            raise ValueError('in_channels and channels must list 4 levels (strides 4..32 and '
                             f'32..4); got {in_channels} and {channels}')
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

    def forward(self, feats):
        """feats: backbone outputs at strides 4, 8, 16, 32 -> maps at strides 32, 16, 8, 4."""
        if len(feats) != 4:
            raise ValueError(f'AxialPixelDecoder expects 4 backbone levels, got {len(feats)}')
        outs = []
        x = None
        for i, f in enumerate(feats[::-1]):
            y = self.laterals[i]['lat'](f)
            if x is not None:
                top = F.interpolate(x, size=f.shape[-2:], mode='bilinear', align_corners=False)
                y = y + self.laterals[i]['top'](top)
            x = self.stages[i](self.act(y))
            outs.append(x)
        return outs
