"""Instance/thing dreamy start (Eq. 8): K image-adaptive centers from FFN(PE(I))."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from clustseg.registry import MODELS
from ..layers.batch_padding import BatchPadding
from ..layers.recurrent_cross_attention import check_positive
from ._ffn import build_ffn
from .base_initializer import BaseInitializer, check_level


@MODELS.register_module()
class ImageAdaptiveInitializer(BaseInitializer):
    """``C0 = FFN(PE(I))`` reduced to K tokens of the image itself, the K top-scoring pixels
    (Eq. 8 leaves open how the K tokens are formed; :class:`PooledImageAdaptiveInitializer`
    pools them instead).

    A 1x1 conv scores every position-embedded pixel; the K highest-scoring pixels are taken,
    and their position-embedded features, multiplied by ``sigmoid(score)`` (which gives the
    scorer a gradient), go through the FFN; ``center_pos`` is the decoder's encoding at those
    pixels.

    K is fixed per config (``num_queries``; 100 for instances) unless a call asks for another,
    and must not exceed the number of pixels of the feature map. In a padded batch an image
    whose valid region has fewer than K cells at this level (LSJ's smallest scales: a 0.1x
    image of a 1024 crop has about 6 x 5 cells at stride 16) also takes padded cells. Their
    score is -inf, so their tokens are zero and those centers all start as the FFN of zero;
    the decoder then updates them alike from the image's pixels. Matching gives a GT segment to
    one of them at most, so this only wastes queries on such images. ``in_level``: the pyramid
    level read (default stride 16).
    """

    def __init__(self, in_channels, embed_dims, num_queries=100, pos_dims=64,
                 in_level='stride16', init_cfg=None):
        super().__init__(init_cfg)
        self.in_level = check_level('initializer.in_level', in_level)
        check_positive('num_queries', num_queries)
        self.num_queries, self.pos_dims = num_queries, pos_dims
        self.score = nn.Conv2d(in_channels + pos_dims, self.score_maps(num_queries), 1)
        self.ffn = build_ffn(in_channels + pos_dims, embed_dims)

    @staticmethod
    def score_maps(num_queries: int) -> int:
        """Output channels of the scoring conv: one score per pixel."""
        return 1

    def embed(self, feats: Tensor,
              pad_mask) -> Tuple[Tensor, BatchPadding, Optional[Tensor]]:
        """The map read -> (its position-embedded features ``[I, PE]`` B x (C + P) x h x w, the
        batch's padding, its mask at h x w (True = padding; None: none padded))."""
        h, w = feats.shape[-2:]
        padding = BatchPadding.of(pad_mask, feats)
        pe = padding.codes_at((h, w), self.pos_dims, feats.dtype)
        return torch.cat([feats, pe], 1), padding, padding.mask_at((h, w))

    def forward(self, feats, pad_mask=None, num_queries=None):
        """feats: B x C x H x W -> dict(centers B x K x D, center_pos B x K x D (the decoder's
        sine encoding at the chosen pixels), query_classes K (all -1), indices B x K (flat
        pixel index)). ``num_queries`` overrides the configured K for this call."""
        feats = self.read(feats)
        h, w = feats.shape[-2:]
        k = self.num_queries if num_queries is None else num_queries
        check_positive('num_queries', k)
        if k > h * w:
            raise ValueError(f'num_queries K={k} is larger than the number of '
                             f'pixels ({h}x{w}) of the feature map')
        x, padding, pm = self.embed(feats, pad_mask)  # B x (C+P) x H x W
        score = self.score(x).flatten(1)  # B x HW
        if pm is not None:
            score = score.masked_fill(pm.flatten(1), float('-inf'))
        idx = score.topk(k, dim=1).indices  # B x K
        tokens = x.flatten(2).transpose(1, 2).gather(
            1, idx[..., None].expand(-1, -1, x.shape[1]))  # B x K x (C+P)
        tokens = tokens * score.gather(1, idx).sigmoid()[..., None]
        centers = self.ffn(tokens)  # B x K x D
        d = centers.shape[-1]
        pos = padding.codes_at((h, w), d, centers.dtype)  # B x D x H x W
        pos = pos.flatten(2).transpose(1, 2).gather(1, idx[..., None].expand(-1, -1, d))
        return dict(centers=centers, center_pos=pos, indices=idx,
                    query_classes=torch.full((k,), -1, dtype=torch.long, device=feats.device))
