"""Axial-attention residual block (height axis, then width axis) and the residual conv block,
size-agnostic and padding-aware (``valid``: B x H x W bool, True = real pixel)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer

from .positional_encoding import POS_SCALE, position_unit, sine_encode_1d


def zero_padding(x, valid):
    """x: B x C x H x W, valid: B x H x W bool or None -> x with padded pixels set to 0."""
    return x if valid is None else x.masked_fill(~valid[:, None], 0.0)


def axial_context(b, h, w, valid, dims, device, dtype=torch.float32, unit=None):
    """What every axial attention over a B x ``dims`` x H x W map shares, computed once per
    map size: per axis (``'h'``, ``'w'``), ``(positions, attn_mask)``.

    ``positions``: B x L x dims (1 x L x dims when the images share their unit), the 1-D code
    (:func:`sine_encode_1d`) of the pixel-centre coordinate along the axis (L = H or W), in the
    units of :mod:`positional_encoding` (``max(valid_h, valid_w) / POS_SCALE`` per image;
    ``unit``: that unit given, a float or a B tensor, e.g.
    :meth:`~.batch_padding.BatchPadding.unit_at`); ``attn_mask``: (B x others) x 1 x 1 x L
    fp32, added to the attention logits: 0 for a key to attend to, -inf for a padded pixel (a
    sequence with no valid key, i.e. a padded row or column, attends to all keys), or None
    without ``valid`` (B x H x W bool, True = real pixel). Additive, so that no attention
    converts a boolean mask again (``scaled_dot_product_attention`` does, per call).
    """
    if unit is None:
        unit = max(h, w) / POS_SCALE if valid is None else position_unit(~valid)
    if isinstance(unit, torch.Tensor):
        unit = unit.view(b, 1)
    pos_dims = dims + dims % 2
    codes = {}
    for length in dict.fromkeys((h, w)):  # one code for a square map, in a fixed order
        t = torch.arange(length, device=device, dtype=torch.float32) + 0.5
        codes[length] = sine_encode_1d(t[None] / unit, pos_dims)[..., :dims].to(dtype)
    out = {}
    for axis, length in (('h', h), ('w', w)):
        mask = None
        if valid is not None:  # sequences along H: (B*W) x H; along W: (B*H) x W
            key_ok = valid.transpose(1, 2).reshape(b * w, h) if axis == 'h' else \
                valid.reshape(b * h, w)
            keep = (key_ok | ~key_ok.any(1, keepdim=True))[:, None, None, :]
            mask = torch.zeros(keep.shape, device=device).masked_fill_(~keep, float('-inf'))
        out[axis] = (codes[length], mask)
    return out


class AxialAttention1d(nn.Module):
    """Multi-head self-attention along one spatial axis of a B x C x H x W map.

    Positions (:func:`axial_context`): the 1-D code of the pixel-centre coordinate along the
    axis, added to the queries and keys. With ``valid`` (B x H x W bool), padded pixels are
    excluded as keys (a sequence with no valid key, i.e. a padded row or column, attends to
    all keys; its outputs are padding and get re-zeroed by the block).
    """

    def __init__(self, dims, num_heads, axis):
        super().__init__()
        if dims % num_heads != 0:
            raise ValueError(f'axial block channels={dims} must be divisible by '
                             f'num_heads={num_heads}')
        if axis not in ('h', 'w'):
            raise ValueError(f"axis must be 'h' or 'w', got {axis!r}")
        self.num_heads, self.axis = num_heads, axis
        self.qkv = nn.Linear(dims, 3 * dims)
        self.proj = nn.Linear(dims, dims)

    def forward(self, x, valid=None, context=None):
        """x: B x C x H x W, valid: B x H x W bool or None, context: :func:`axial_context`
        of this map size (computed here if None) -> B x C x H x W."""
        b, c, h, w = x.shape
        if context is None:
            context = axial_context(b, h, w, valid, c, x.device, x.dtype)
        pos, attn_mask = context[self.axis]
        pos = pos.to(x.dtype)  # B x L x C (a no-op unless autocast changed the dtype)
        if attn_mask is not None:  # additive, in the attention's dtype (likewise)
            attn_mask = attn_mask.to(x.dtype)
        if self.axis == 'h':  # sequences along H: (B*W) x H x C
            seq = x.permute(0, 3, 2, 1).reshape(b * w, h, c)
            length, others = h, w
        else:  # along W: (B*H) x W x C
            seq = x.permute(0, 2, 3, 1).reshape(b * h, w, c)
            length, others = w, h
        q, k, v = self.qkv(seq).chunk(3, dim=-1)
        # the positions broadcast over the other axis: B x others x L x C
        add_pos = lambda t: (t.view(b, others, length, c) + pos[:, None]).view(-1, length, c)
        q, k = add_pos(q), add_pos(k)
        split = lambda t: t.view(t.shape[0], length, self.num_heads, -1).transpose(1, 2)
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=attn_mask)
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

    def __init__(self, dims, num_heads=4, norm_cfg=dict(type="BN")):
        super().__init__()
        inner = dims // 2
        self.reduce = nn.Sequential(nn.Conv2d(dims, inner, 1, bias=False),
                                    norm_layer(norm_cfg, inner), nn.GELU())
        self.attn_h = AxialAttention1d(inner, num_heads, 'h')
        self.attn_w = AxialAttention1d(inner, num_heads, 'w')
        self.expand = nn.Sequential(nn.Conv2d(inner, dims, 1, bias=False),
                                    norm_layer(norm_cfg, dims))
        nn.init.zeros_(self.expand[1].weight)
        self.act = nn.GELU()

    @property
    def attn_dims(self) -> int:
        """Channels of the block's axial attentions (what its :func:`axial_context` encodes)."""
        return self.attn_h.proj.in_features

    def forward(self, x, valid, context):
        """x: B x dims x H x W, valid: B x H x W bool (True = real pixel) or None, context: the
        :func:`axial_context` of the map's size and :attr:`attn_dims` that a stage's blocks
        share (``BatchPadding.axial_at``). Padded pixels take no part as keys and are zero in
        the output."""
        y = self.reduce(x)
        y = self.attn_w(self.attn_h(y, valid, context), valid, context)
        return zero_padding(self.act(x + self.expand(y)), valid)


class ConvBlock(nn.Module):
    """Residual 3x3 conv block used at strides 8 and 4.

    With ``valid`` the padded pixels are set to zero before each 3x3 conv and in the output,
    so that a conv at the border of an image's valid region sees the zeros it sees when the
    image is alone (the input ``x`` must already be zero there)."""

    def __init__(self, dims, norm_cfg=dict(type='BN')):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(dims, dims, 3, padding=1, bias=False), norm_layer(norm_cfg, dims),
            nn.GELU(), nn.Conv2d(dims, dims, 3, padding=1, bias=False),
            norm_layer(norm_cfg, dims))
        nn.init.zeros_(self.body[4].weight)
        self.act = nn.GELU()

    def forward(self, x, valid=None):
        """x: B x dims x H x W (zero on padding), valid: B x H x W bool or None."""
        y = zero_padding(self.body[2](self.body[1](self.body[0](x))), valid)
        y = self.body[4](self.body[3](y))
        return zero_padding(self.act(x + y), valid)
