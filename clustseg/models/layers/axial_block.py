"""Axial-attention residual block (height axis, then width axis), size-agnostic."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from .positional_encoding import sine_position_encoding


class AxialAttention1d(nn.Module):
    """Multi-head self-attention along one spatial axis of a B x C x H x W map.

    Positions are a 1-D sine encoding computed for the current length and added to the keys
    and queries, so any input size works (no fixed-length relative-position tables).
    """

    def __init__(self, dims, num_heads, axis):
        super().__init__()
        if dims % num_heads != 0:
            raise ValueError(f'axial block channels={dims} must be divisible by '
                             f'num_heads={num_heads}')
        self.num_heads, self.axis = num_heads, axis
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)
        self.pos_dims = dims if dims % 4 == 0 else 4 * (dims // 4 + 1)

    def forward(self, x):
        b, c, h, w = x.shape
        if self.axis == 'h':  # sequences along H: (B*W) x H x C
            seq = x.permute(0, 3, 2, 1).reshape(b * w, h, c)
            length = h
        else:  # along W: (B*H) x W x C
            seq = x.permute(0, 2, 3, 1).reshape(b * h, w, c)
            length = w
        pos = sine_position_encoding(1, length, self.pos_dims, unit=8.0, device=x.device,
                                     dtype=x.dtype)[:c, 0].t()  # L x C
        q, k, v = self.qkv(seq).chunk(3, dim=-1)
        q, k = q + pos, k + pos
        split = lambda t: t.view(t.shape[0], length, self.num_heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        out = self.proj(out.transpose(1, 2).reshape(-1, length, c))
        if self.axis == 'h':
            return out.view(b, w, h, c).permute(0, 3, 2, 1)
        return out.view(b, h, w, c).permute(0, 3, 1, 2)


def norm_layer(norm_cfg, channels):
    """The normalisation layer of ``norm_cfg`` (mmcv: BN / SyncBN / GN / ...) for ``channels``."""
    return build_norm_layer(norm_cfg, channels)[1]


class AxialBlock(nn.Module):
    """1x1 conv-norm-GELU -> height attention -> width attention -> 1x1 conv-norm (zero-init
    scale) -> residual add -> GELU. Channels: in = out = ``dims``; inner = ``dims // 2``."""

    def __init__(self, dims, num_heads=4, inner_dims=None, norm_cfg=dict(type='BN')):
        super().__init__()
        inner = inner_dims or dims // 2
        self.reduce = nn.Sequential(nn.Conv2d(dims, inner, 1, bias=False),
                                    norm_layer(norm_cfg, inner), nn.GELU())
        self.attn_h = AxialAttention1d(inner, num_heads, 'h')
        self.attn_w = AxialAttention1d(inner, num_heads, 'w')
        self.expand = nn.Sequential(nn.Conv2d(inner, dims, 1, bias=False),
                                    norm_layer(norm_cfg, dims))
        nn.init.zeros_(self.expand[1].weight)
        self.act = nn.GELU()

    def forward(self, x):
        y = self.reduce(x)
        y = self.attn_w(self.attn_h(y))
        return self.act(x + self.expand(y))


class ConvBlock(nn.Module):
    """Residual 3x3 conv block used at strides 8 and 4."""

    def __init__(self, dims, norm_cfg=dict(type='BN')):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dims, dims, 3, padding=1, bias=False), norm_layer(norm_cfg, dims),
            nn.GELU(), nn.Conv2d(dims, dims, 3, padding=1, bias=False),
            norm_layer(norm_cfg, dims))
        nn.init.zeros_(self.body[4].weight)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(x + self.body(x))
