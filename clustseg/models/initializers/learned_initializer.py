"""Baseline for ablations: K free, image-independent center embeddings."""
import torch.nn as nn
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.recurrent_cross_attention import check_positive


@MODELS.register_module()
class LearnedInitializer(BaseModule):
    """``C0 = E`` with E a learned K x D table (the 'free parameters' rows of Tables 4b/6)."""

    def __init__(self, num_queries, embed_dims, init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_queries', num_queries)
        self.num_queries = num_queries
        self.embed = nn.Embedding(num_queries, embed_dims)

    def forward(self, feats, pad_mask=None):
        """feats: B x C x H x W (only B is used) -> dict(centers B x K x D)."""
        return dict(centers=self.embed.weight[None].expand(feats.shape[0], -1, -1))
