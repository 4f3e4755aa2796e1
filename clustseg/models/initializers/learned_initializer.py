"""Baseline for ablations: K free, image-independent center embeddings."""
import torch.nn as nn

from clustseg.registry import MODELS
from ..layers.recurrent_cross_attention import check_positive
from .base_initializer import BaseInitializer, query_class_ids


@MODELS.register_module()
class LearnedInitializer(BaseInitializer):
    """``C0 = E`` with E a learned K x D table (the 'free parameters' rows of Tables 4b/6),
    plus a learned K x D query position table (as Mask2Former's query embeddings).

    ``variable_k=True``: a call asking for K' <= K queries gets the first K' rows (the
    superpixel learned-queries ablation, where K changes per batch; rows never asked for in
    training stay at their initialisation).

    ``query_classes`` ties query k to class ``query_classes[k]`` (e.g. the learned-stuff
    ablation of Table 4b, one query per stuff class); default: no tie (-1).
    """

    def __init__(self, num_queries, embed_dims, query_classes=None, variable_k=False,
                 init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_queries', num_queries)
        self.num_queries = num_queries
        self.variable_k = bool(variable_k)
        self.embed = nn.Embedding(num_queries, embed_dims)
        self.pos_embed = nn.Embedding(num_queries, embed_dims)
        self.register_buffer('query_classes', query_class_ids(query_classes, num_queries),
                             persistent=False)

    def forward(self, feats, pad_mask=None, num_queries=None):
        """feats: the pyramid (only B is read) -> dict(centers B x K x D, center_pos
        B x K x D, query_classes K)."""
        k = self.num_queries if num_queries is None else num_queries
        if k != self.num_queries and not (self.variable_k and 1 <= k <= self.num_queries):
            raise ValueError(f'LearnedInitializer has {self.num_queries} queries; '
                             f'num_queries={num_queries} was asked'
                             + ('' if self.variable_k else ' (variable_k=False)'))
        b = self.read(feats).shape[0]
        return dict(centers=self.embed.weight[:k][None].expand(b, -1, -1),
                    center_pos=self.pos_embed.weight[:k][None].expand(b, -1, -1),
                    query_classes=self.query_classes[:k])
