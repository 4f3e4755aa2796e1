"""The one sine position-encoding convention of ClustSeg (pixel decoder, decoder, initializers).

Convention (size-agnostic, padding-aware; like mmdet's ``SinePositionalEncoding`` it reads a
B x H x W padding mask, True = padding, and normalises by each image's *valid* extent):

* pixel (i, j) of a map sits at its centre ``(x, y) = (j + 0.5, i + 0.5)`` (map pixels);
* positions are divided by a unit ``u``; by default ``u = max(valid_h, valid_w) / scale`` per
  image (isotropic: the valid long side spans ``scale`` units, one map pixel is as long in x as
  in y), so an image padded in a batch gets, on its valid region, the codes it gets alone;
  a caller may pass its own unit instead (the superpixel grid initializer: the grid interval);
* 1-D code of a position t, n channels: ``[sin(t w_k), cos(t w_k)]``, k < n/2,
  ``w_k = 2 pi temperature^(-k / (n/2))``;
* 2-D code of (x, y), d channels: ``[1-D(x, d/2), 1-D(y, d/2)]``.

A point (a cluster center) at map coordinates (x, y) encoded with :func:`sine_encode_points`
and the same unit gets exactly the code of the map pixel whose centre it is.

mmdet's ``SinePositionalEncoding`` is not reused: it normalises each axis by its own extent
(anisotropic), interleaves sin/cos in (y, x) order and cannot encode arbitrary points.
"""
import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: default number of position units across the valid long side of a map
POS_SCALE = 8.0


def sine_encode_1d(t, dims, temperature=10000.0):
    """1-D code of positions ``t`` (any shape ``...``, in units) -> ``... x dims`` (fp32).

    ``dims`` must be even: dims/2 frequencies, sines then cosines.
    """
    if dims % 2 != 0:
        raise ValueError(f'1-D position encoding dims must be even, got {dims}')
    half = dims // 2
    freq = temperature ** (-torch.arange(half, device=t.device, dtype=torch.float32) / half)
    ang = t.float()[..., None] * (freq * (2 * math.pi))  # ... x half
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


def sine_encode_points(xy, dims, unit=1.0, temperature=10000.0):
    """2-D code of arbitrary points.

    Args:
        xy: ``... x 2`` (x, y) in map pixels (a pixel's centre is at +0.5).
        dims (int): output channels, a multiple of 4.
        unit: float, or a tensor broadcastable to ``xy[..., 0]`` (e.g. B x 1 for B x K points):
            the length that counts as one position unit.

    Returns:
        Tensor: ``... x dims`` (fp32).
    """
    if dims % 4 != 0:
        raise ValueError(f'position encoding dims must be a multiple of 4, got {dims}')
    x, y = xy[..., 0] / unit, xy[..., 1] / unit
    return torch.cat([sine_encode_1d(x, dims // 2, temperature),
                      sine_encode_1d(y, dims // 2, temperature)], dim=-1)


def _check_mask(pad_mask):
    if pad_mask.dim() != 3 or pad_mask.dtype != torch.bool:
        raise ValueError('pad_mask must be a B x H x W bool tensor (True = padding), got '
                         f'{tuple(pad_mask.shape)} {pad_mask.dtype}')


def valid_hw(pad_mask):
    """B x H x W bool (True = padding) -> B x 2 float: (rows, columns) holding a valid pixel."""
    _check_mask(pad_mask)
    valid = ~pad_mask
    return torch.stack([valid.any(2).sum(1), valid.any(1).sum(1)], dim=1).float()


def position_unit(pad_mask, scale=POS_SCALE):
    """The convention's unit of every image: ``max(valid_h, valid_w) / scale`` -> B (float).

    An image without any valid pixel gets the unit of a 1-pixel image (no division by 0)."""
    return valid_hw(pad_mask).amax(1).clamp_min(1.0) / scale


def sine_position_encoding(h, w, dims, unit=None, scale=POS_SCALE, temperature=10000.0,
                           device=None, dtype=None):
    """Code of every pixel of an unpadded ``h x w`` map -> ``dims x h x w``.

    ``unit`` (float) overrides the default ``max(h, w) / scale``. Equals
    :func:`masked_sine_position_encoding` of an all-valid mask.
    """
    if unit is None:
        unit = max(h, w) / scale
    ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    xy = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
    return sine_encode_points(xy, dims, unit, temperature).permute(2, 0, 1).to(
        dtype or torch.float32)


def masked_sine_position_encoding(pad_mask, dims, unit=None, scale=POS_SCALE,
                                  temperature=10000.0, dtype=None):
    """Code of every pixel of a padded batch of maps.

    Args:
        pad_mask: B x H x W bool, True = padding (at this map's resolution; see
            :meth:`~.batch_padding.BatchPadding.mask_at`). Valid pixels are assumed to start
            at (0, 0).
        dims (int): channels, a multiple of 4.
        unit: None (the convention: :func:`position_unit`), a float, or a B fp32 tensor.

    Returns:
        Tensor: B x dims x H x W, zero on padded pixels.
    """
    _check_mask(pad_mask)
    b, h, w = pad_mask.shape
    if unit is None:
        unit = position_unit(pad_mask, scale)
    if isinstance(unit, torch.Tensor) and unit.dim() == 1:
        unit = unit.view(b, 1, 1)
    ys = torch.arange(h, device=pad_mask.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=pad_mask.device, dtype=torch.float32) + 0.5
    xy = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
    pos = sine_encode_points(xy[None].expand(b, h, w, 2), dims, unit, temperature)
    pos = pos.masked_fill(pad_mask[..., None], 0.0)
    return pos.permute(0, 3, 1, 2).to(dtype or torch.float32)


def conv_stride(in_size, out_size):
    """The power-of-two stride s with ``ceil(in / s) == out`` on both axes (the output size of
    a stride-s conv net with 'same' padding), or None. ``in_size``, ``out_size``: (h, w)."""
    for e in range(16):
        s = 2 ** e
        if all(-(-i // s) == o for i, o in zip(in_size, out_size)):
            return s
    return None


def labels_at(labels: Tensor, size: Sequence[int]) -> Tensor:
    """B x H x W labels of the (padded) input -> B x h x w labels of a map of ``size``.

    With the conv stride s of the map (:func:`conv_stride`, ``ceil(H / s) == h``) a map pixel
    covers the input window ``[s i, s (i + 1))`` and takes the label at its centre
    ``s i + s // 2`` (clamped into the input); otherwise nearest resizing."""
    h0, w0 = labels.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h, w) == (h0, w0):
        return labels
    s = conv_stride((h0, w0), (h, w))
    if s is None:
        return F.interpolate(labels[:, None].float(), size=(h, w),
                             mode='nearest')[:, 0].long()
    rows = (torch.arange(h, device=labels.device) * s + s // 2).clamp(max=h0 - 1)
    cols = (torch.arange(w, device=labels.device) * s + s // 2).clamp(max=w0 - 1)
    return labels[:, rows][:, :, cols]
