"""Small helpers shared by the mask-classification losses (fp32 islands, shape checks).

Every mask-classification loss here computes its softmax / log / einsum maths in fp32 with
autocast switched off for the tensors' device (:func:`fp32_island`), so the losses are safe
under ``torch.autocast`` (fp16 or bf16) and always return fp32 scalars.
"""
import contextlib
from typing import Optional, Tuple

import torch
from torch import Tensor


def shape_str(t) -> str:
    """``'2x3x4'`` for a tensor, the type name otherwise (for error messages)."""
    if isinstance(t, Tensor):
        return 'x'.join(str(s) for s in t.shape)
    return type(t).__name__


@contextlib.contextmanager
def fp32_island(ref: Tensor):
    """Disable autocast on ``ref``'s device inside the block (callers cast with ``.float()``)."""
    with torch.autocast(device_type=ref.device.type, enabled=False):
        yield


def flatten_masks(masks: Tensor, name: str, dims: int = 3) -> Tensor:
    """``B x K x H x W`` -> ``B x K x HW`` (``B x K x HW`` is passed through).

    With ``dims=2``: ``K x H x W`` -> ``K x HW``.
    """
    if not isinstance(masks, Tensor):
        raise ValueError(f'{name} must be a tensor, got {type(masks).__name__}')
    if masks.dim() == dims + 1:
        return masks.flatten(dims - 1)
    if masks.dim() != dims:
        want = 'B x K x H x W or B x K x HW' if dims == 3 else 'K x H x W or K x HW'
        raise ValueError(f'{name} must be {want}, got shape {shape_str(masks)}')
    return masks


def flatten_pixels(x: Optional[Tensor], name: str, b: int, n: int) -> Optional[Tensor]:
    """``B x H x W`` or ``B x HW`` -> ``B x HW`` (None stays None); checks ``B x HW``."""
    if x is None:
        return None
    if x.dim() == 3:
        x = x.flatten(1)
    if x.dim() != 2 or x.shape[0] != b or x.shape[1] != n:
        raise ValueError(f'{name} must be B x H x W or B x HW = {b} x {n}, '
                         f'got shape {shape_str(x)}')
    return x


def per_image_mean(values: Tensor, weights: Tensor) -> Tensor:
    """``mean_b( sum_i w_bi v_bi / max(sum_i w_bi, eps) )``.

    Args:
        values: ``B x N`` per-element losses.
        weights: ``B x N`` non-negative weights (0 = excluded).

    Returns:
        fp32 scalar; an image whose weights are all 0 contributes 0 to the batch mean
        (as kMaX-DeepLab's ``divide_no_nan``).
    """
    num = (values * weights).sum(dim=1)
    den = weights.sum(dim=1)
    per = torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num))
    return per.mean()


def check_mask_pair(mask_logits: Tensor, target_masks: Tensor) -> Tuple[Tensor, Tensor]:
    """Flatten ``B x K x H x W`` (or ``B x K x HW``) logits and targets to ``B x K x HW`` and
    check that their shapes match."""
    logits = flatten_masks(mask_logits, 'mask_logits')
    targets = flatten_masks(target_masks, 'target_masks')
    if targets.shape != logits.shape:
        raise ValueError(f'target_masks ({shape_str(targets)}) must match mask_logits '
                         f'({shape_str(logits)})')
    return logits, targets


def check_query_targets(mask_logits: Tensor, target_masks: Tensor,
                        matched: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Flatten and check ``B x K x HW`` logits / targets and a ``B x K`` bool mask."""
    logits, targets = check_mask_pair(mask_logits, target_masks)
    if matched.shape != logits.shape[:2]:
        raise ValueError(f'matched must be B x K = {shape_str(logits[..., 0])}, '
                         f'got {shape_str(matched)}')
    return logits, targets, matched.to(device=logits.device, dtype=torch.bool)


__all__ = [
    'shape_str', 'fp32_island', 'flatten_masks', 'flatten_pixels', 'per_image_mean',
    'check_mask_pair', 'check_query_targets'
]
