"""Size-agnostic sinusoidal position encodings (no fixed-length tables)."""
import math

import torch


def sine_position_encoding(h, w, dims, unit=1.0, temperature=10000.0, device=None, dtype=None):
    """2-D sine/cosine encoding of pixel centres, computed for any size.

    Args:
        h, w (int): grid size.
        dims (int): output channels, a multiple of 4 (x and y each get dims/2: sin + cos).
        unit (float): length (in grid pixels) that counts as one position unit. With
            ``unit=S`` (the superpixel grid interval) the encoding is the same for every K.
        temperature (float): base of the geometric frequency ladder.

    Returns:
        Tensor: dims x h x w.
    """
    if dims % 4 != 0:
        raise ValueError(f'position encoding dims must be a multiple of 4, got {dims}')
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / unit
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / unit
    return _encode_xy(xs[None, :].expand(h, w), ys[:, None].expand(h, w), dims,
                      temperature).to(dtype or torch.float32)


def sine_encode_points(xy, dims, temperature=10000.0):
    """Encodes arbitrary (x, y) positions. xy: ... x 2 -> ... x dims."""
    enc = _encode_xy(xy[..., 0], xy[..., 1], dims, temperature)  # dims x ...
    return enc.movedim(0, -1)


def _encode_xy(x, y, dims, temperature):
    quarter = dims // 4
    freq = temperature ** (-torch.arange(quarter, device=x.device, dtype=torch.float32) / quarter)
    freq = freq * 2 * math.pi
    ax = x.float()[None] * freq.view(-1, *([1] * x.dim()))  # quarter x ...
    ay = y.float()[None] * freq.view(-1, *([1] * y.dim()))
    return torch.cat([ax.sin(), ax.cos(), ay.sin(), ay.cos()], dim=0)
