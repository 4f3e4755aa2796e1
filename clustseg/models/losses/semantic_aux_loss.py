"""kMaX-DeepLab's auxiliary semantic segmentation loss, as a pure function.

kMaX-DeepLab (PyTorch port ``aux_semantic_loss``) trains a semantic head on the pixel decoder
with a plain softmax cross-entropy (no dice), on ``k = 4096`` pixels per image drawn with
``P ~ (HW / area of the pixel's segment) ** 2.0`` (``AUX_SEMANTIC_SAMPLE_K`` /
``AUX_SEMANTIC_TEMPERATURE``), void pixels ignored; mean over the drawn pixels of each image,
then over the batch; weight ``AUX_SEMANTIC_WEIGHT = 1.0``; applied to the final output only.

With ``num_samples=0`` the loss is dense: the per-image mean over non-ignored pixels. For a
batch of one image that is exactly mmseg's ``CrossEntropyLoss(avg_non_ignore=True)`` (which
averages over all non-ignored pixels of the batch at once); use that class where batch-level
averaging is wanted - this function exists for kMaX's per-image normalisation and sampling.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from .loss_utils import fp32_island, per_image_mean, shape_str
from .pixel_sampling import area_weighted_sample, inverse_segment_area

#: label of ignored pixels (void / padding; mmdet panoptic and mmseg: 255)
IGNORE_INDEX = 255
#: exponent of the inverse segment area in the sampling law (kMaX ``AUX_SEMANTIC_TEMPERATURE``)
SAMPLE_TEMPERATURE = 2.0


def _class_inverse_area(labels: Tensor, keep: Tensor, num_classes: int) -> Tensor:
    """``HW / area`` of each pixel's class region (``B x HW``; void pixels get ``HW``)."""
    b, n = labels.shape
    lab = torch.where(keep, labels, torch.full_like(labels, num_classes))
    counts = torch.zeros(b, num_classes + 1, device=labels.device)
    counts.scatter_add_(1, lab, torch.ones_like(lab, dtype=counts.dtype))
    area = counts.gather(1, lab)
    area = torch.where(keep, area, torch.ones_like(area))
    return n / area.clamp(min=1.0)


def semantic_aux_loss(sem_logits: Tensor,
                      gt_semantic: Tensor,
                      num_samples: int = 4096,
                      gt_masks: Optional[Tensor] = None) -> Tensor:
    """Softmax cross-entropy of the auxiliary semantic head (kMaX-DeepLab).

    ``loss = mean_b mean_{i in S_b} -log softmax(sem_logits)_{i, y_i}``, ``S_b`` = the drawn
    pixels (:func:`area_weighted_sample`) or, with ``num_samples=0``, all non-ignored pixels.

    Args:
        sem_logits: ``B x C x H x W`` logits (same ``H x W`` as the labels; kMaX strides the
            labels down to the prediction beforehand).
        gt_semantic: ``B x H x W`` int class map, :data:`IGNORE_INDEX` (255) = void / padding.
        num_samples: pixels drawn per image (kMaX: 4096) with
            ``P ~ (HW / area) ** SAMPLE_TEMPERATURE`` (kMaX: 2.0); 0 = dense.
        gt_masks: optional ``B x M x H x W`` panoptic segments whose areas drive the
            sampling (kMaX uses the instance / stuff segments); default: the class regions.

    Returns:
        fp32 scalar.
    """
    if sem_logits.dim() != 4 or gt_semantic.dim() != 3 or \
            sem_logits.shape[0] != gt_semantic.shape[0] or \
            sem_logits.shape[2:] != gt_semantic.shape[1:]:
        raise ValueError(f'sem_logits must be B x C x H x W and gt_semantic B x H x W with the '
                         f'same B, H, W, got {shape_str(sem_logits)} and '
                         f'{shape_str(gt_semantic)}')
    b, c = sem_logits.shape[:2]
    logits = sem_logits.flatten(2)  # B x C x HW
    labels = gt_semantic.flatten(1).to(device=logits.device, dtype=torch.long)  # B x HW
    keep = labels != IGNORE_INDEX
    if bool(((labels[keep] < 0) | (labels[keep] >= c)).any()):
        raise ValueError(f'gt_semantic has labels outside [0, {c}) that are not '
                         f'ignored ({IGNORE_INDEX})')
    with fp32_island(logits):
        if num_samples and num_samples > 0:
            if gt_masks is not None:
                inv = inverse_segment_area(gt_masks.to(logits.device))
            else:
                inv = _class_inverse_area(labels, keep, c)
            idx, ok = area_weighted_sample(inv, keep, num_samples, SAMPLE_TEMPERATURE)
            logits = logits.gather(2, idx.unsqueeze(1).expand(-1, c, -1))  # B x C x S
            labels = labels.gather(1, idx)
            keep = ok & (labels != IGNORE_INDEX)
        safe = torch.where(keep, labels, torch.zeros_like(labels))
        ce = F.cross_entropy(logits.float(), safe, reduction='none')  # B x N
        return per_image_mean(ce, keep.float())


__all__ = ['semantic_aux_loss']
