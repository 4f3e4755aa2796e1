"""Mask-ID cross-entropy (MaX-DeepLab / kMaX-DeepLab), as a pure function.

Every labelled pixel is classified into one of the ``K`` queries: softmax over the query axis
of the mask logits, cross-entropy against the query matched to the pixel's ground-truth
segment. Pixels covered by no matched segment (void, padding, a GT left unmatched when there
are more segments than queries) are ignored. Overlapping targets (instance masks) are
normalised into a soft target that sums to one, as the kMaX-DeepLab PyTorch port does.
Normalisation follows that port: mean over the valid pixels of each image, then mean over the
batch. kMaX-DeepLab's COCO weight for this term is ``MASK_WEIGHT = 0.3``.
"""
from typing import Optional

import torch
from torch import Tensor

from .loss_utils import check_mask_pair, flatten_pixels, fp32_island, per_image_mean


def mask_id_cross_entropy(mask_logits: Tensor,
                          target_masks: Tensor,
                          valid: Optional[Tensor] = None,
                          log_probs: bool = False) -> Tensor:
    """Per-pixel softmax cross-entropy over the ``K`` masks.

    ``loss = mean_b mean_{i valid} -sum_k y_ki log softmax_K(mask_logits)_ki`` with
    ``y_ki = t_ki / max(sum_j t_ji, 1)``; a pixel is valid when ``sum_k t_ki >= 0.5`` (some
    matched GT covers it) and ``valid`` (if given) is True.

    Args:
        mask_logits: ``B x K x H x W`` (or ``B x K x HW``) mask logits.
        target_masks: same shape, query-aligned matched GT masks (0 for unmatched queries).
        valid: optional ``B x H x W`` / ``B x HW`` bool, False = ignored (padding).
        log_probs: ``mask_logits`` already hold ``log_softmax_K`` (a caller that shares one
            log-softmax between several terms); the value is the same.

    Returns:
        fp32 scalar (0 when no pixel is valid).
    """
    logits, targets = check_mask_pair(mask_logits, target_masks)
    b, _, n = logits.shape
    valid = flatten_pixels(valid, 'valid', b, n)
    with fp32_island(logits):
        t = targets.float()
        cover = t.sum(dim=1)  # B x HW
        keep = cover >= 0.5
        if valid is not None:
            keep = keep & valid.to(device=t.device, dtype=torch.bool)
        y = t / cover.clamp(min=1.0).unsqueeze(1)
        log_p = logits.float() if log_probs else logits.float().log_softmax(dim=1)
        ce = -(y * log_p).sum(dim=1)  # B x HW
        return per_image_mean(ce, keep.float())


__all__ = ['mask_id_cross_entropy']
