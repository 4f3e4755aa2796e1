"""Instance/thing dreamy start (Eq. 8): K image-adaptive centers from FFN(PE(I))."""
import torch
import torch.nn as nn

from clustseg.registry import MODELS
from ..layers.batch_padding import BatchPadding
from ..layers.recurrent_cross_attention import check_positive
from ._ffn import build_ffn
from .base_initializer import BaseInitializer, check_level


@MODELS.register_module()
class ImageAdaptiveInitializer(BaseInitializer):
    """``C0 = FFN(PE(I))`` reduced to K tokens of the image itself.

    How the K tokens are formed (``token_mode``; Eq. 8 leaves it open):

    - ``'topk'`` (default): a 1x1 conv scores every position-embedded pixel; the K
      highest-scoring pixels are taken, and their position-embedded features, multiplied by
      ``sigmoid(score)`` (which gives the scorer a gradient), go through the FFN;
      ``center_pos`` is the decoder's encoding at those pixels.
    - ``'attention'``: a 1x1 conv gives every position-embedded pixel one logit per query; token
      k is the softmax-over-pixels weighted mean of the position-embedded features (query k
      learns where and what to pool, from this image's content); ``center_pos`` is the same
      weighted mean of the decoder's position encoding.

    K is fixed per config (``num_queries``; 100 for instances, 75 for panoptic things) and, for
    ``'topk'``, must not exceed the number of pixels of the feature map. In a padded batch an
    image whose valid region has fewer than K cells at this level (LSJ's smallest scales: a
    0.1x image of a 1024 crop has about 6 x 5 cells at stride 16) also takes padded cells.
    Their score is -inf, so their tokens are zero and those centers all start as the FFN of
    zero; the decoder then updates them alike from the image's pixels. Matching gives a GT
    segment to one of them at most, so this only wastes queries on such images.

    ``query_classes`` ties query k to class ``query_classes[k]`` (the scene-adaptive stuff
    centers of Table 4b #4: one per stuff class, matched to that class's segment); default: no
    tie (-1). ``in_level``: the pyramid level read (default stride 16).
    """

    def __init__(self, in_channels, embed_dims, num_queries=100, pos_dims=64, token_mode='topk',
                 query_classes=None, in_level='stride16', init_cfg=None):
        super().__init__(init_cfg)
        self.in_level = check_level('initializer.in_level', in_level)
        check_positive('num_queries', num_queries)
        if token_mode not in ('topk', 'attention'):
            raise ValueError(f"token_mode must be 'topk' or 'attention', got {token_mode!r}")
        self.num_queries, self.pos_dims, self.token_mode = num_queries, pos_dims, token_mode
        out = 1 if token_mode == 'topk' else num_queries
        self.score = nn.Conv2d(in_channels + pos_dims, out, 1)
        self.ffn = build_ffn(in_channels + pos_dims, embed_dims)
        qc = torch.full((num_queries, ), -1, dtype=torch.long) if query_classes is None else \
            torch.as_tensor(list(query_classes), dtype=torch.long)
        if qc.shape != (num_queries, ):
            raise ValueError(f'query_classes must list {num_queries} class ids, got {len(qc)}')
        if query_classes is not None and token_mode != 'attention':
            raise ValueError("query_classes needs token_mode='attention' (a top-K pixel has no "
                             'fixed query identity)')
        self.register_buffer('query_classes', qc, persistent=False)

    def forward(self, feats, pad_mask=None, num_queries=None):
        """feats: B x C x H x W -> dict(centers B x K x D, center_pos B x K x D (the decoder's
        sine encoding at the chosen pixels), query_classes K (all -1), indices B x K (flat
        pixel index)). ``num_queries`` overrides the configured K for this call."""
        feats = self.read(feats)
        b, _, h, w = feats.shape
        k = self.num_queries if num_queries is None else num_queries
        check_positive('num_queries', k)
        if self.token_mode == 'attention':
            return self._attention_tokens(feats, pad_mask, k)
        if k > h * w:
            raise ValueError(f'num_queries K={k} is larger than the number of '
                             f'pixels ({h}x{w}) of the feature map')
        padding = BatchPadding.of(pad_mask, feats)
        pm = padding.mask_at((h, w))  # B x h x w, True = padding (None: none padded)
        pe = padding.codes_at((h, w), self.pos_dims, feats.dtype)
        x = torch.cat([feats, pe], 1)  # B x (C+P) x H x W
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

    def _attention_tokens(self, feats, pad_mask, k):
        """token_mode 'attention': K pooled tokens (see the class docstring)."""
        if k != self.num_queries:
            raise ValueError(f"token_mode='attention' has {self.num_queries} learned pooling "
                             f'maps; num_queries={k} was asked')
        b, _, h, w = feats.shape
        padding = BatchPadding.of(pad_mask, feats)
        pm = padding.mask_at((h, w))  # B x h x w, True = padding (None: none padded)
        pe = padding.codes_at((h, w), self.pos_dims, feats.dtype)
        x = torch.cat([feats, pe], 1)  # B x (C+P) x H x W
        logits = self.score(x).flatten(2)  # B x K x HW
        if pm is not None:
            logits = logits.masked_fill(pm.flatten(1)[:, None], float('-inf'))
        attn = logits.softmax(dim=-1)
        tokens = torch.bmm(attn, x.flatten(2).transpose(1, 2))  # B x K x (C+P)
        centers = self.ffn(tokens)  # B x K x D
        d = centers.shape[-1]
        # the decoder's codes at this level (shared when it reads it)
        pos = padding.codes_at((h, w), d, centers.dtype)
        pos = torch.bmm(attn.to(pos.dtype), pos.flatten(2).transpose(1, 2))  # B x K x D
        return dict(centers=centers, center_pos=pos, indices=attn.argmax(dim=-1),
                    query_classes=self.query_classes)
