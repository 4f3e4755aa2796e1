"""The stack of recurrent cross-attention decoder layers over a feature pyramid."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.positional_encoding import sine_position_encoding
from ..layers.recurrent_cross_attention import check_choice, check_positive
from .cluster_decoder_layer import ClusterDecoderLayer

SUPERVISION = ('all', 'layer', 'final')


@MODELS.register_module()
class ClusterDecoder(BaseModule):
    """Hierarchy of ClusterDecoderLayers (Eq. 11) with class / mask-embedding heads.

    Layer ``i`` reads pyramid level ``layer_levels[i]`` (index into ``feats``; by default
    levels 0, 1, 2 = strides 32, 16, 8, two layers each). After every E/M round the current
    centers are decoded into a prediction (deep supervision):

    * ``mask_logits = <MLP(C_k), P_i>`` with ``P`` the mask features (B x E x H x W);
    * ``cls_logits = Linear(C)`` over ``num_classes + 1`` (last = void), if ``num_classes``.

    Args:
        in_channels (list[int]): channels of each pyramid level.
        embed_dims (int): D. num_heads, num_iters (T), ffn_dims, variant, m_step: per layer.
        layer_levels (list[int]): pyramid level of each layer.
        num_classes (int, optional): enables the class head.
        mask_dims (int, optional): E, channels of the mask features; enables the mask head.
        deep_supervision (str): 'all' (every E-step), 'layer' (last E-step of each layer),
            'final' (only the final output).
    """

    def __init__(self, in_channels=(256, 256, 256), embed_dims=256, num_heads=8, num_iters=3,
                 ffn_dims=2048, layer_levels=(0, 0, 1, 1, 2, 2), variant='recurrent',
                 m_step='mean', dropout=0.0, num_classes=None, mask_dims=None,
                 deep_supervision='all', init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_layers (len(layer_levels))', len(layer_levels))
        check_choice('deep_supervision', deep_supervision, SUPERVISION)
        for lv in layer_levels:
            if not 0 <= lv < len(in_channels):
                raise ValueError(f'layer_levels entry {lv} is out of range for '
                                 f'{len(in_channels)} in_channels')
        self.layer_levels = list(layer_levels)
        self.embed_dims = embed_dims
        self.deep_supervision = deep_supervision
        self.input_proj = nn.ModuleList(
            nn.Identity() if c == embed_dims else nn.Conv2d(c, embed_dims, 1) for c in in_channels)
        self.level_embed = nn.Embedding(len(in_channels), embed_dims)
        self.layers = nn.ModuleList(
            ClusterDecoderLayer(embed_dims, num_heads, num_iters, ffn_dims, variant, m_step,
                                dropout=dropout) for _ in layer_levels)
        self.out_norm = nn.LayerNorm(embed_dims)
        self.cls_head = nn.Linear(embed_dims, num_classes + 1) if num_classes else None
        self.mask_head = nn.Sequential(
            nn.Linear(embed_dims, embed_dims), nn.ReLU(inplace=True),
            nn.Linear(embed_dims, embed_dims), nn.ReLU(inplace=True),
            nn.Linear(embed_dims, mask_dims)) if mask_dims else None

    def predict_from_centers(self, centers, mask_feats=None):
        """centers: B x K x D -> dict(cls_logits B x K x (C+1), mask_logits B x K x H x W)."""
        c = self.out_norm(centers)
        pred = dict(centers=centers)
        if self.cls_head is not None:
            pred['cls_logits'] = self.cls_head(c)
        if self.mask_head is not None and mask_feats is not None:
            with torch.autocast(device_type=c.device.type, enabled=False):
                pred['mask_logits'] = torch.einsum(
                    'bke,behw->bkhw', self.mask_head(c).float(), mask_feats.float())
        return pred

    def _flatten(self, feat, level, pad_mask):
        b, _, h, w = feat.shape
        x = self.input_proj[level](feat)
        pos = sine_position_encoding(h, w, self.embed_dims, unit=max(h, w) / 8.0,
                                     device=feat.device, dtype=x.dtype)
        x = x + self.level_embed.weight[level].view(1, -1, 1, 1)
        kpm = None
        if pad_mask is not None:  # B x H0 x W0 bool, True = padding
            kpm = nn.functional.interpolate(
                pad_mask[:, None].float(), size=(h, w), mode='nearest')[:, 0].bool().flatten(1)
        return (x.flatten(2).transpose(1, 2),
                pos.flatten(1).t()[None].expand(b, -1, -1), kpm)

    def forward(self, centers, feats, mask_feats=None, pad_mask=None, center_pos=None,
                return_logits=True):
        """Decodes.

        Args:
            centers: B x K x D initial centers (dreamy start).
            feats (list[Tensor]): pyramid levels, each B x C_l x H_l x W_l.
            mask_feats: B x E x H x W features for mask prediction (optional).
            pad_mask: B x H x W bool, True = padded input pixel (optional).
            center_pos: B x K x D position embedding of the centers (optional).

        Returns:
            dict(centers=final B x K x D, predictions=list of dicts (last = final), each with
            ``layer``, ``iter`` and the head outputs; e_steps=list of dict(layer, iter, level,
            logits B x K x N_l, assigns, hw)).
        """
        if len(feats) != len(self.input_proj):
            raise ValueError(f'expected {len(self.input_proj)} feature levels, got {len(feats)}')
        flat = {}
        predictions, e_steps = [], []
        c = centers
        n_layers = len(self.layers)
        for i, (layer, lv) in enumerate(zip(self.layers, self.layer_levels)):
            if lv not in flat:
                flat[lv] = self._flatten(feats[lv], lv, pad_mask)
            x, pos, kpm = flat[lv]
            out = layer(c, x, kpm, center_pos, pos, return_logits=return_logits)
            c = out['centers']
            hw = feats[lv].shape[-2:]
            for t, (lg, asg) in enumerate(zip(out['logits'], out['assigns'])):
                e_steps.append(dict(layer=i, iter=t, level=lv, logits=lg, assigns=asg, hw=hw))
            for t, ct in enumerate(out['iter_centers']):
                last_t = t == len(out['iter_centers']) - 1
                keep = (self.deep_supervision == 'all'
                        or (self.deep_supervision == 'layer' and last_t)
                        or (i == n_layers - 1 and last_t))
                if keep:
                    pred = self.predict_from_centers(ct, mask_feats)
                    pred.update(layer=i, iter=t)
                    predictions.append(pred)
        return dict(centers=c, predictions=predictions, e_steps=e_steps)
