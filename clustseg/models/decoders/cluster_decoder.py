"""The stack of recurrent cross-attention decoder layers over a feature pyramid."""
import torch.nn as nn
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.local_em import LocalAssignment, local_grid
from ..layers.batch_padding import BatchPadding
from ..layers.recurrent_cross_attention import check_positive, map_names
from ..utils.step_random import StepRandom
from .cluster_decoder_layer import ClusterDecoderLayer


@MODELS.register_module()
class ClusterDecoder(BaseModule):
    """Hierarchy of ClusterDecoderLayers (Eq. 11) over a feature pyramid.

    Layer ``i`` reads pyramid level ``layer_levels[i]`` (index into ``feats``; by default
    levels 0, 1, 2 = strides 32, 16, 8, two layers each). The decoder returns query states
    only: the centers after every E/M round of every layer (and, when asked, that E-step's
    maps). Class / mask predictions, their norms and their losses belong to the task heads,
    so that every parameter here takes part in every task's loss.

    Layers reading a level of ``local_levels`` run the local E/M of
    :class:`RecurrentCrossAttention` (superpixels: center k tied to grid cell k of the seed map,
    each pixel assigned among 9 neighbouring centers, O(9 N) instead of O(K N)); ``forward``
    then needs ``seed_hw``, and their maps are :class:`LocalAssignment` / B x K x 9 x P.

    Args:
        in_channels (list[int | None]): channels of each pyramid level; ``None`` marks a level
            that no layer reads (it has no projection; e.g. ``[None, None, 32]`` with
            ``layer_levels=(2,)``, a decoder at stride 8 only).
        embed_dims (int): D. num_heads, num_iters (T), ffn_dims, variant, shared_iters:
            per layer (:class:`ClusterDecoderLayer`; ``variant`` is a registered
            :class:`~clustseg.models.e_steps.EStepVariant` name or config).
        layer_levels (list[int]): pyramid level of each layer.
        local_levels (list[int]): pyramid levels whose layers use the local E/M.
    """

    def __init__(self, in_channels=(256, 256, 256), embed_dims=256, num_heads=8, num_iters=3,
                 ffn_dims=2048, layer_levels=(0, 0, 1, 1, 2, 2), variant='recurrent',
                 local_levels=(), shared_iters=True, init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_layers (len(layer_levels))', len(layer_levels))
        for lv in layer_levels:
            if not 0 <= lv < len(in_channels):
                raise ValueError(f'layer_levels entry {lv} is out of range for '
                                 f'{len(in_channels)} in_channels')
        for lv in local_levels:
            if lv not in layer_levels:
                raise ValueError(f'local_levels entry {lv} is not a level of layer_levels='
                                 f'{list(layer_levels)}')
        self.local_levels = tuple(local_levels)
        unread = sorted(set(range(len(in_channels))) - set(layer_levels))
        unread = [lv for lv in unread if in_channels[lv] is not None]
        if unread:  # their projections would be parameters outside every loss (DDP breaks)
            raise ValueError(f'layer_levels={list(layer_levels)} reads no layer from pyramid '
                             f'level(s) {unread}; drop them from in_channels or set their '
                             'in_channels entry to None')
        for lv in layer_levels:
            if in_channels[lv] is None:
                raise ValueError(f'layer_levels reads pyramid level {lv}, whose in_channels '
                                 'entry is None')
        self.layer_levels = list(layer_levels)
        self.embed_dims = embed_dims
        self.num_iters = num_iters
        self.input_proj = nn.ModuleList(
            nn.Identity() if c in (None, embed_dims) else nn.Conv2d(c, embed_dims, 1)
            for c in in_channels)
        # one row per level read (rows of unread levels would get no gradient)
        read = sorted(set(layer_levels))
        self.level_index = {lv: i for i, lv in enumerate(read)}
        self.level_embed = nn.Embedding(len(read), embed_dims)
        self.layers = nn.ModuleList(
            ClusterDecoderLayer(embed_dims, num_heads, num_iters, ffn_dims, variant,
                                shared_iters=shared_iters)
            for _ in layer_levels)
        # random draws of the layers' E-steps (the Gumbel noise of the k-means variant): one
        # stream per layer; with the one seed of the model they drew the same noise
        for name, m in self.layers.named_modules():
            if isinstance(m, StepRandom):
                m.stream = f'decoder.layers.{name}'
        if local_levels and not self.layers[0].cross_attn.supports_local:
            raise ValueError(f'local_levels={list(local_levels)} needs an E-step variant with a '
                             f'local form (supports_local) and shared_iters=True, got variant='
                             f'{variant!r}, shared_iters={shared_iters}')

    @property
    def variant(self):
        """The E-step variant of the layers (:class:`~clustseg.models.e_steps.EStepVariant`;
        its declared properties are what heads and segmentors read)."""
        return self.layers[0].cross_attn.variant

    def _flatten(self, feat, level, padding):
        """feat B x C x H x W, padding: the batch's
        :class:`~..layers.batch_padding.BatchPadding` -> (keys B x N x D, key positions
        B x N x D, key padding mask B x N, None when no key of the level is padded).

        Key positions follow :mod:`..layers.positional_encoding` (unit = the image's valid long
        side / 8 at this level; the codes ``padding.codes_at`` shares with the initializer);
        the level's mask is ``padding.mask_at`` (ceil logic)."""
        b, _, h, w = feat.shape
        x = self.input_proj[level](feat)
        x = x + self.level_embed.weight[self.level_index[level]].view(1, -1, 1, 1)
        mask = padding.mask_at((h, w))  # B x H x W, or None: no padded key at this level
        codes = padding.codes_at((h, w), self.embed_dims, x.dtype)  # B x D x H x W
        # keys and positions pixel-major and contiguous once per level, so that the layers'
        # projections read them without a copy each (one image's positions, expanded, when
        # nothing is padded)
        if mask is None:
            pos = codes[0].flatten(1).t().contiguous()[None].expand(b, -1, -1)
        else:
            pos = codes.flatten(2).transpose(1, 2).contiguous()
        return (x.flatten(2).transpose(1, 2).contiguous(), pos,
                None if mask is None else mask.flatten(1))

    def _grid(self, num_clusters, seed_hw, level, hw, device):
        if seed_hw is None:
            raise ValueError(f'local_levels={list(self.local_levels)}: forward needs seed_hw, '
                             'the size of the map the grid seeds were sampled from')
        if num_clusters > hw[0] * hw[1]:
            raise ValueError(f'the local E-step at pyramid level {level} ({hw[0]}x{hw[1]}) '
                             f'needs K <= {hw[0] * hw[1]}, got K={num_clusters}')
        return local_grid(num_clusters, seed_hw, hw, device)

    def forward(self, centers, feats, pad_mask=None, center_pos=None, return_logits=False,
                seed_hw=None, inner_rounds=True):
        """Decodes.

        Args:
            centers: B x K x D initial centers (dreamy start).
            feats (list[Tensor]): pyramid levels, each B x C_l x H_l x W_l.
            pad_mask: B x H x W bool, True = padded input pixel, or the batch's
                :class:`~..layers.batch_padding.BatchPadding` (optional).
            center_pos: B x K x D position embedding of the centers (optional).
            return_logits: also return every E-step's maps (B x K x N_l each; at a local
                level ``logits`` is B x K x 9 x P and ``probs`` / ``assigns`` are
                :class:`LocalAssignment`): True, all of them, or a sequence of the names
                to return (:func:`~..layers.recurrent_cross_attention.map_names`).
            seed_hw: (h, w) of the seed grid (needed with ``local_levels``).
            inner_rounds: compute the output centers of every E/M round; False: only each
                layer's last (the others' ``centers`` are None: inference, or supervision of
                the last E-steps only, needs no more).

        Returns:
            dict(centers=final B x K x D, e_steps=list over layers x iterations of
            dict(layer, iter, level, hw, centers=B x K x D after that E/M round) plus the maps
            ``return_logits`` names (True: all): ``logits`` (E-step logits), ``probs``
            (softmax over clusters, what losses supervise), ``assigns`` (what the M-step
            used)).
        """
        if len(feats) != len(self.input_proj):
            raise ValueError(f'expected {len(self.input_proj)} feature levels, got {len(feats)}')
        keep = map_names(return_logits)
        padding = BatchPadding.of(pad_mask, centers)
        flat = {}
        e_steps = []
        c = centers
        for i, (layer, lv) in enumerate(zip(self.layers, self.layer_levels)):
            if lv not in flat:
                flat[lv] = self._flatten(feats[lv], lv, padding)
            x, pos, kpm = flat[lv]
            hw = tuple(feats[lv].shape[-2:])
            grid = self._grid(c.shape[1], seed_hw, lv, hw, c.device) \
                if lv in self.local_levels else None
            out = layer(c, x, kpm, center_pos, pos, return_logits=bool(keep), grid=grid,
                        return_maps=keep,  # without maps to return, none is kept
                        inner_rounds=inner_rounds)
            c = out['centers']
            for t, ct in enumerate(out['iter_centers']):
                state = dict(layer=i, iter=t, level=lv, hw=hw, centers=ct)
                for name in keep:
                    m = out[name][t]
                    state[name] = LocalAssignment(m, grid) \
                        if grid is not None and name != 'logits' else m
                e_steps.append(state)
        return dict(centers=c, e_steps=e_steps)
