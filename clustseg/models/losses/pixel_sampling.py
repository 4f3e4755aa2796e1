"""Area-balanced pixel sampling used by kMaX-DeepLab's pixel-level auxiliary losses.

kMaX-DeepLab (PyTorch port, ``kmax_deeplab/modeling/criterion.py``; deeplab2
``max_deeplab_loss.py``) supervises its pixel-wise instance discrimination and auxiliary
semantic losses on ``k = 4096`` pixels per image drawn *without replacement* with probability
proportional to ``(HW / area(segment of the pixel)) ** temperature`` (Gumbel-top-k), so that
small segments are not drowned by large ones. Void pixels are never drawn.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from .loss_utils import flatten_masks


def inverse_segment_area(gt_masks: Tensor) -> Tensor:
    """``HW / area`` of the segment each pixel belongs to.

    Args:
        gt_masks: ``B x M x H x W`` (or ``B x M x HW``) binary masks (padded with zero masks).

    Returns:
        ``B x HW`` fp32; void pixels (no mask) get ``HW`` (as kMaX, which clamps the area at
        1); overlapping masks use the sum of their areas.
    """
    m = flatten_masks(gt_masks, 'gt_masks').float()
    n = m.shape[2]
    area = m.sum(dim=2)  # B x M
    pixel_area = torch.einsum('bmn,bm->bn', m, area)  # B x HW
    return n / pixel_area.clamp(min=1.0)


def area_weighted_sample(inverse_area: Tensor,
                         keep: Tensor,
                         num_samples: int,
                         temperature: float,
                         generator: Optional[torch.Generator] = None
                         ) -> Tuple[Tensor, Tensor]:
    """Draw pixels without replacement, ``P(i) ~ inverse_area_i ** temperature``.

    Gumbel-top-k: ``topk(temperature * log(inverse_area) + Gumbel noise)`` over the kept
    pixels.

    Args:
        inverse_area: ``B x HW`` positive (see :func:`inverse_segment_area`).
        keep: ``B x HW`` bool, False pixels are never drawn.
        num_samples: pixels drawn per image (capped at ``HW``).
        temperature: exponent of the inverse area (kMaX: 1.5 for instance discrimination,
            2.0 for the semantic loss).
        generator: optional ``torch.Generator`` for reproducible draws.

    Returns:
        ``(index, ok)``: ``B x S`` int64 pixel indices and ``B x S`` bool, False where an image
        had fewer than ``S`` kept pixels (those slots hold an arbitrary dropped pixel).
    """
    b, n = inverse_area.shape
    s = min(int(num_samples), n)
    if s <= 0:
        raise ValueError(f'num_samples must be positive, got {num_samples}')
    dev = generator.device if generator is not None else inverse_area.device
    u = torch.rand(b, n, generator=generator, device=dev)
    u = u.to(inverse_area.device).clamp(1e-12, 1.0 - 1e-7)
    gumbel = -torch.log(-torch.log(u))
    logits = temperature * torch.log(inverse_area.float().clamp(min=1e-12)) + gumbel
    logits = logits.masked_fill(~keep.bool(), float('-inf'))
    vals, index = logits.topk(s, dim=1)
    return index, torch.isfinite(vals)


__all__ = ['inverse_segment_area', 'area_weighted_sample']
