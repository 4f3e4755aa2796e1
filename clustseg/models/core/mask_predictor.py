"""Cluster centers -> per-pixel mask logits, shared by the mask heads."""
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from clustseg.registry import MODELS


@MODELS.register_module()
class MaskPredictor(BaseModule):
    """``mask_k(p) = <MLP(LN(c_k)), W P(p)>``: the normalised centers through a 3-layer MLP,
    dotted (fp32) with the pixel embedding ``P`` (the stride-4 pixel-decoder map) projected to
    ``mask_dims`` by a 1x1 conv. The normalised centers are returned too, for class heads.

    Args:
        embed_dims (int): D of the centers. pixel_dims (int): channels of ``P``.
        mask_dims (int): E, channels of the mask embedding.
    """

    def __init__(self, embed_dims, pixel_dims, mask_dims=256, init_cfg=None):
        super().__init__(init_cfg)
        d = embed_dims
        self.norm = nn.LayerNorm(d)
        self.embed = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d),
                                   nn.ReLU(inplace=True), nn.Linear(d, mask_dims))
        self.proj = nn.Conv2d(pixel_dims, mask_dims, 1)

    def project(self, pixel_feats: Tensor) -> Tensor:
        """B x C x h x w -> B x E x h x w mask features (once per forward)."""
        return self.proj(pixel_feats)

    def embed_centers(self, centers: Tensor) -> Tuple[Tensor, Tensor]:
        """centers ... x K x D (any leading dimensions, e.g. S x B x K x D: several E-steps at
        once) -> (normalised centers ... x K x D, mask embeddings ... x K x E under the
        caller's autocast)."""
        c = self.norm(centers)
        return c, self.embed(c)

    @staticmethod
    def mask_logits(embed: Tensor, mask_feats: Tensor) -> Tensor:
        """embed B x K x E (:meth:`embed_centers`), mask_feats B x E x h x w (:meth:`project`)
        -> mask logits B x K x h x w, fp32."""
        with torch.autocast(device_type=embed.device.type, enabled=False):  # fp32 island
            b, e, h, w = mask_feats.shape
            # one bmm (B x K x E by B x E x hw), the same products as einsum's, fewer operators
            return torch.matmul(embed.float(), mask_feats.float().reshape(b, e, h * w)) \
                .view(b, -1, h, w)

    def forward(self, centers: Tensor, mask_feats: Tensor) -> Tuple[Tensor, Tensor]:
        """centers B x K x D, mask_feats B x E x h x w (:meth:`project`) -> (normalised centers
        B x K x D, mask logits B x K x h x w fp32)."""
        c, embed = self.embed_centers(centers)
        return c, self.mask_logits(embed, mask_feats)
