"""Superpixel dreamy start (Eq. 9): FFN of K grid-sampled, position-embedded pixel features."""
import math

import torch
import torch.nn.functional as F

from clustseg.registry import MODELS
from ..layers.batch_padding import BatchPadding
from ..layers.positional_encoding import sine_encode_points, sine_position_encoding
from ..layers.seed_grid import grid_points
from ._ffn import build_ffn
from .base_initializer import BaseInitializer, check_level


@MODELS.register_module()
class GridInitializer(BaseInitializer):
    """``C0 = FFN(Grid_Sample_K(PE(I)))``; K is chosen per call, any value, any image shape.

    PE is a sine encoding in units of the grid interval ``S = sqrt(HW/K)`` (so it means the same
    for every K) concatenated to the features; the K positions come from :func:`grid_points`
    and are sampled bilinearly.

    Args:
        in_channels (int): channels of the sampled feature map.
        embed_dims (int): D of the centers.
        pos_dims (int): channels of the position encoding (multiple of 4).
        in_level (str): the pyramid level the seeds are sampled from.
    """

    def __init__(self, in_channels, embed_dims, pos_dims=32, in_level='stride8', init_cfg=None):
        super().__init__(init_cfg)
        self.in_level = check_level('initializer.in_level', in_level)
        self.pos_dims = pos_dims
        self.ffn = build_ffn(in_channels + pos_dims, embed_dims)

    def forward(self, feats, pad_mask=None, num_queries=None):
        """feats: the pyramid (reads ``in_level``, B x C x H x W), pad_mask: B x H0 x W0 bool
        (True = padding) or the batch's ``BatchPadding`` (optional), num_queries: K (required)
        -> dict(centers B x K x D, points K x 2 (x, y) in feature px, center_pos B x K x D
        (the decoder's sine convention at this level: unit = each image's valid long side / 8,
        as ``ClusterDecoder`` encodes its keys), query_classes K (all -1: no class tie)). The
        seed grid covers the whole (padded) map, shared by the batch."""
        if num_queries is None:
            raise ValueError('GridInitializer needs num_queries (the number of superpixels K)')
        num_clusters = num_queries
        feats = self.read(feats)
        b, _, h, w = feats.shape
        if num_clusters > h * w:
            raise ValueError(f'num_superpixels K={num_clusters} is larger than the number of '
                             f'pixels ({h}x{w}={h * w}) of the feature map it is sampled from')
        pts = grid_points(num_clusters, h, w, feats.device)  # K x 2
        unit = math.sqrt(h * w / num_clusters)
        pe = sine_position_encoding(h, w, self.pos_dims, unit=unit, device=feats.device,
                                    dtype=feats.dtype)
        x = torch.cat([feats, pe[None].expand(b, -1, -1, -1)], dim=1)
        grid = torch.stack([pts[:, 0] / w * 2 - 1, pts[:, 1] / h * 2 - 1], dim=-1)
        sampled = F.grid_sample(x, grid.view(1, 1, -1, 2).expand(b, -1, -1, -1).to(x.dtype),
                                mode='bilinear', align_corners=False)  # B x C x 1 x K
        centers = self.ffn(sampled[:, :, 0].transpose(1, 2))  # B x K x D
        # the decoder's key convention at this level: unit = valid long side / POS_SCALE
        unit = BatchPadding.of(pad_mask, feats).unit_at((h, w))  # float, or B
        if isinstance(unit, torch.Tensor):
            unit = unit[:, None]  # B x 1
        center_pos = sine_encode_points(pts[None].expand(b, -1, -1), centers.shape[-1],
                                        unit=unit)  # B x K x D
        return dict(centers=centers, points=pts, center_pos=center_pos.to(centers.dtype),
                    query_classes=torch.full((num_clusters,), -1, dtype=torch.long,
                                             device=feats.device))
