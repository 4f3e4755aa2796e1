"""One ClustSeg decoder layer: recurrent cross-attention -> self-attention -> FFN."""
import torch.nn as nn
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.recurrent_cross_attention import RecurrentCrossAttention


@MODELS.register_module()
class ClusterDecoderLayer(BaseModule):
    """Eq. 11 for one layer, with the multi-head/FFN parts of a transformer decoder.

    ``C <- norm1(C + W_o RCA(I, C))``, ``C <- norm2(C + SelfAttn(C))``, ``C <- norm3(C + FFN(C))``.
    The centers after each E/M round (``norm1(C + W_o C^(t))``) are returned too, so that every
    E-step can be supervised.

    Args:
        embed_dims, num_heads, num_iters, variant, shared_iters: of the
            :class:`RecurrentCrossAttention` (``variant``: a registered
            :class:`~clustseg.models.e_steps.EStepVariant` name or config).
        ffn_dims (int): hidden channels of the FFN.
    """

    def __init__(self, embed_dims=256, num_heads=8, num_iters=3, ffn_dims=2048,
                 variant='recurrent', shared_iters=True, init_cfg=None):
        super().__init__(init_cfg)
        self.cross_attn = RecurrentCrossAttention(
            embed_dims, num_heads=num_heads, num_iters=num_iters, variant=variant,
            shared_iters=shared_iters)
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(nn.Linear(embed_dims, ffn_dims), nn.GELU(),
                                 nn.Linear(ffn_dims, embed_dims))
        self.norm3 = nn.LayerNorm(embed_dims)

    def forward(self, centers, feats, key_padding_mask=None, center_pos=None, feat_pos=None,
                return_logits=True, grid=None, return_maps=True, inner_rounds=True):
        """centers: B x K x D, feats: B x N x D -> dict(centers, iter_centers, logits, assigns,
        probs) (maps as in :meth:`RecurrentCrossAttention.forward`; ``grid``: its local form;
        ``return_maps``: which maps, False for none; ``inner_rounds``: False, the rounds before
        the last get no output centers, None in ``iter_centers``)."""
        out = self.cross_attn(centers, feats, key_padding_mask, center_pos, feat_pos,
                              return_logits=return_logits, grid=grid, return_maps=return_maps)
        last = len(out['iter_centers']) - 1
        iter_centers = [self.norm1(centers + self.out_proj(c)) if inner_rounds or t == last
                        else None for t, c in enumerate(out['iter_centers'])]
        c = iter_centers[-1]
        q = c if center_pos is None else c + center_pos
        c = self.norm2(c + self.self_attn(q, q, c, need_weights=False)[0])
        c = self.norm3(c + self.ffn(c))
        iter_centers[-1] = c
        return dict(centers=c, iter_centers=iter_centers, logits=out['logits'],
                    assigns=out['assigns'], probs=out['probs'])
