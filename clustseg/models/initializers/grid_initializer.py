"""Superpixel dreamy start (Eq. 9): FFN of K grid-sampled, position-embedded pixel features."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.positional_encoding import sine_encode_points, sine_position_encoding
from ._ffn import build_ffn


def grid_points(num_points, h, w, device=None):
    """Exactly ``num_points`` near-regular positions covering an h x w image.

    Rows: ``r = clamp(round(sqrt(K h / w)), 1, K)``; row j gets ``floor((j+1)K/r) - floor(jK/r)``
    points (so the counts differ by at most one and add up to K), evenly spaced at cell centres.

    Returns:
        Tensor: K x 2 (x, y) in pixel units (pixel centres at +0.5).
    """
    if num_points < 1:
        raise ValueError(f'num_superpixels (K) must be >= 1, got {num_points}')
    rows = min(num_points, max(1, round(math.sqrt(num_points * h / w))))
    pts = []
    for j in range(rows):
        n_j = (j + 1) * num_points // rows - j * num_points // rows
        y = (j + 0.5) * h / rows
        xs = (torch.arange(n_j, dtype=torch.float32) + 0.5) * w / n_j
        pts.append(torch.stack([xs, torch.full_like(xs, y)], dim=1))
    return torch.cat(pts).to(device)


@MODELS.register_module()
class GridInitializer(BaseModule):
    """``C0 = FFN(Grid_Sample_K(PE(I)))``; K is chosen per call, any value, any image shape.

    PE is a sine encoding in units of the grid interval ``S = sqrt(HW/K)`` (so it means the same
    for every K) concatenated to the features; the K positions come from :func:`grid_points`
    and are sampled bilinearly.

    Args:
        in_channels (int): channels of the sampled feature map.
        embed_dims (int): D of the centers.
        pos_dims (int): channels of the position encoding (multiple of 4).
    """

    def __init__(self, in_channels, embed_dims, pos_dims=32, init_cfg=None):
        super().__init__(init_cfg)
        self.pos_dims = pos_dims
        self.ffn = build_ffn(in_channels + pos_dims, embed_dims)

    def forward(self, feats, pad_mask=None, num_queries=None):
        """feats: B x C x H x W, num_queries: K (required) -> dict(centers B x K x D, points
        K x 2 (x, y) in feature px, center_pos B x K x D (the decoder's sine convention at this
        level), query_classes K (all -1: no class tie))."""
        if num_queries is None:
            raise ValueError('GridInitializer needs num_queries (the number of superpixels K)')
        num_clusters = num_queries
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
        center_pos = sine_encode_points(pts / (max(h, w) / 8.0), centers.shape[-1])
        return dict(centers=centers, points=pts,
                    center_pos=center_pos[None].expand(b, -1, -1).to(centers.dtype),
                    query_classes=torch.full((num_clusters,), -1, dtype=torch.long,
                                             device=feats.device))
