"""Full-resolution pixel embedding for superpixels: learned features + colour + position."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.axial_block import norm_layer


#: initial scales of the embedding (trained afterwards): colour weight (SLIC's m = 10), overall
#: sharpness of the Gaussian E-step, and the small start of the learned channels
COLOR_WEIGHT = 10.0
INIT_SHARPNESS = 2.0
INIT_LEARNED_SCALE = 0.1


@MODELS.register_module()
class SuperpixelEmbeddingHead(BaseModule):
    """Builds the pixel embedding ``I`` on which the final, full-resolution E-steps run.

    ``I = [g * learned(x), c * Lab, p * xy / S]`` per pixel (B x (E + 5) x H x W) where

    * ``learned`` fuses the stride-4 pixel-decoder map (upsampled) with a light 3x3 conv stem on
      the full-resolution image (boundary detail). Its scale ``g`` starts small
      (``INIT_LEARNED_SCALE``), so an untrained model clusters mostly on colour and position,
      like SLIC. It must not start at exactly zero: the centers' learned channels are sampled
      from the same embedding, and with both sides of the E-step's dot product at zero their
      gradients vanish (a saddle the training never leaves);
    * ``Lab`` is the input colour in CIE Lab scaled by (1/100, 1/110, 1/110);
    * ``xy / S`` are pixel coordinates in units of the grid interval ``S = sqrt(HW / K)``;
    * ``g``, ``c``, ``p`` are learned positive scales (stored as logs), initialised so that a
      colour difference of 10 Lab units weighs as much as a distance of one grid interval (SLIC
      with compactness m = 10, ``COLOR_WEIGHT``) and the Gaussian E-step is sharp
      (``INIT_SHARPNESS``).

    ``norm_cfg`` is the normalisation of its convs (mmcv config: BN, SyncBN, GN, ...).
    ``stem_stride`` (1 or 2) is the stride at which the stem and the fusion run: 1 = at full
    resolution; 2 = the stem's first conv has stride 2 and the fused ``learned`` map is
    upsampled (bilinear) to full resolution, about 4x fewer conv operations (Lab and xy stay
    per pixel at full resolution).
    """

    def __init__(self, in_channels, embed_dims=32, stem_dims=16, stem_stride=1,
                 norm_cfg=dict(type='BN'), init_cfg=None):
        super().__init__(init_cfg)
        if stem_stride not in (1, 2):
            raise ValueError(f'embed_head.stem_stride must be 1 or 2, got {stem_stride!r}')
        self.embed_dims = embed_dims
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_dims, 3, stride=stem_stride, padding=1, bias=False),
            norm_layer(norm_cfg, stem_dims),
            nn.GELU(), nn.Conv2d(stem_dims, stem_dims, 3, padding=1, bias=False),
            norm_layer(norm_cfg, stem_dims), nn.GELU())
        self.lateral = nn.Sequential(nn.Conv2d(in_channels, embed_dims, 1, bias=False),
                                     norm_layer(norm_cfg, embed_dims), nn.GELU())
        self.fuse = nn.Sequential(
            nn.Conv2d(embed_dims + stem_dims, embed_dims, 3, padding=1, bias=False),
            norm_layer(norm_cfg, embed_dims), nn.GELU(), nn.Conv2d(embed_dims, embed_dims, 1))
        # colour in Lab/100 units: 10 Lab units = 0.1 -> x COLOR_WEIGHT -> 1.0 = one interval S
        s = math.sqrt(INIT_SHARPNESS)
        self.log_learned_scale = nn.Parameter(torch.tensor(math.log(INIT_LEARNED_SCALE * s)))
        self.log_color_scale = nn.Parameter(torch.tensor(math.log(COLOR_WEIGHT * s)))
        self.log_pos_scale = nn.Parameter(torch.tensor(math.log(s)))

    @property
    def out_channels(self):
        return self.embed_dims + 5

    def forward(self, img, lab, feat4, interval):
        """img: B x 3 x H x W normalised input; lab: B x 3 x H x W scaled Lab; feat4: stride-4
        map; interval: S in pixels -> B x (E + 5) x H x W."""
        b, _, h, w = img.shape
        stem = self.stem(img)  # B x S x H/s x W/s
        up = F.interpolate(self.lateral(feat4), size=stem.shape[-2:], mode='bilinear',
                           align_corners=False)
        # the scale commutes with the bilinear upsampling: applied before it, on fewer pixels
        learned = self.fuse(torch.cat([up, stem], dim=1)).float() * self.log_learned_scale.exp()
        if learned.shape[-2:] != (h, w):
            learned = F.interpolate(learned, size=(h, w), mode='bilinear', align_corners=False)
        ys = (torch.arange(h, device=img.device, dtype=torch.float32) + 0.5) / interval
        xs = (torch.arange(w, device=img.device, dtype=torch.float32) + 0.5) / interval
        xy = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), 0)[None].expand(b, -1, -1, -1)
        return torch.cat([learned, lab.float() * self.log_color_scale.exp(),
                          xy * self.log_pos_scale.exp()], dim=1)
