"""The layout of K grid seeds on an h x w map, shared by the grid initializer and the local E/M."""
import math

import torch


def grid_row_counts(num_points, h, w):
    """Layout of the K seeds of an h x w map: ``r = clamp(round(sqrt(K h / w)), 1, K)`` rows,
    row j holding ``floor((j+1)K/r) - floor(jK/r)`` seeds (the counts differ by at most one and
    add up to K). Seed k of the raster order is cell (j, c) of this layout.

    Returns:
        list[int]: the r row counts.
    """
    if num_points < 1:
        raise ValueError(f'num_superpixels (K) must be >= 1, got {num_points}')
    rows = min(num_points, max(1, round(math.sqrt(num_points * h / w))))
    return [(j + 1) * num_points // rows - j * num_points // rows for j in range(rows)]


def grid_points(num_points, h, w, device=None):
    """Exactly ``num_points`` near-regular positions covering an h x w image.

    Rows as :func:`grid_row_counts`; row j's band is ``[j h / r, (j + 1) h / r)`` and its n_j
    points sit at the centres of n_j equal cells, ``x = (c + 0.5) w / n_j``,
    ``y = (j + 0.5) h / r`` (the cells the local E/M of ``layers/local_em.py`` uses).

    Returns:
        Tensor: K x 2 (x, y) in pixel units (pixel centres at +0.5).
    """
    counts = grid_row_counts(num_points, h, w)
    rows = len(counts)
    pts = []
    for j, n_j in enumerate(counts):
        y = (j + 0.5) * h / rows
        xs = (torch.arange(n_j, dtype=torch.float32) + 0.5) * w / n_j
        pts.append(torch.stack([xs, torch.full_like(xs, y)], dim=1))
    return torch.cat(pts).to(device)
