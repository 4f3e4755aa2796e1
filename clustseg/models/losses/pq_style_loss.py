"""kMaX-DeepLab's PQ-style loss (a surrogate of PQ = RQ x SQ), as a pure function.

MaX-DeepLab (Wang et al., CVPR 2021, Eq. 10) and kMaX-DeepLab (Yu et al., ECCV 2022) maximise
``sum_k p_k(c_k) x dice(m_k, g_k)`` over matched pairs: the gradient of the product splits
into a mask term (dice loss weighted by the *detached* class probability) and a class term
(cross-entropy weighted by the *detached* dice similarity). Unmatched queries are pushed to the
void class. The constants follow deeplab2 ``model/loss/max_deeplab_loss.py`` and its PyTorch
port (bytedance/kmax-deeplab ``kmax_deeplab/modeling/criterion.py``):

- masks are softmax-normalised over the ``K`` queries; void pixels (covered by no matched GT)
  are zeroed in the prediction before the dice;
- dice loss ``1 - (2 sum p t + 1) / (sum p + sum t + 1)`` (smooth 1);
- class-probability weight and dice-similarity weight clamped below at ``1e-5``;
- focal ``alpha = 0.75``: positive (matched) class terms x 0.75, negative (void) x 0.25; the mask
  term is scaled by ``alpha / K`` ("same weight and normalising constant" as the class term);
- the void term of an unmatched query is weighted by the fraction of its mask mass lying on
  void pixels (deeplab2's ``mask_void_ratio``, intersection over prediction), clamped at 1e-5.
"""
from typing import Dict, Optional

import torch
from torch import Tensor

from .loss_utils import check_query_targets, flatten_pixels, fp32_island, shape_str
from .query_targets import void_pixels

#: focal alpha of the positive terms (deeplab2 ``focal_loss_alpha``)
ALPHA = 0.75
#: lower clamp of both detached weights (deeplab2 / kMaX)
MIN_WEIGHT = 1e-5
#: smoothing of the dice loss (kMaX port)
DICE_SMOOTH = 1.0
#: denominator epsilon of the dice similarity and of the void ratio (deeplab2)
SIM_EPS = 1e-5


def pq_style_loss(cls_logits: Tensor,
                  mask_logits: Tensor,
                  target_masks: Tensor,
                  target_labels: Tensor,
                  matched: Tensor,
                  valid: Optional[Tensor] = None,
                  unmatched_weight: Optional[float] = None,
                  log_probs: bool = False) -> Dict[str, Tensor]:
    """PQ-style loss: dice x detached class prob, and class CE x detached dice.

    With ``p = softmax_K(mask_logits)`` zeroed on void pixels, ``t`` the matched target,
    ``q_k = softmax(cls_logits_k)``:

    - ``mask = mean_b alpha / K * sum_{k matched} max(q_k(c_k), min_w).detach() * dice_loss_k``
      with ``dice_loss_k = 1 - (2 <p_k, t_k> + s) / (|p_k| + |t_k| + s)``;
    - ``cls = mean_b 1 / K * sum_k w_k * (-log q_k(y_k))``, ``y_k = c_k`` (matched) or void
      (``C``, unmatched), ``w_k = alpha * max(sim_k, min_w)`` for matched queries with the dice
      similarity ``sim_k = <p_k, t_k> / ((|p_k| + |t_k|) / 2 + eps)`` (detached), and
      ``w_k = (1 - alpha) * max(void_ratio_k, min_w)`` (detached) for unmatched ones,
      ``void_ratio_k = sum_{void px} softmax_K(mask_logits)_k / sum_px softmax_K(...)_k``, or
      ``(1 - alpha) * unmatched_weight`` when that is given (MaX-DeepLab's paper form is 1.0).

    Constants (deeplab2 / kMaX): ``alpha = ALPHA = 0.75``, ``min_w = MIN_WEIGHT = 1e-5``,
    ``s = DICE_SMOOTH = 1``, ``eps = SIM_EPS = 1e-5``.

    kMaX divides the class term by the number of non-zero terms (``K`` unless one is exactly 0).

    Args:
        cls_logits: ``B x K x (C + 1)`` class logits, last column = void / no object.
        mask_logits: ``B x K x H x W`` (or ``B x K x HW``) mask logits.
        target_masks: same shape, matched GT masks (0 for unmatched queries), see
            :func:`~clustseg.models.losses.build_query_targets`.
        target_labels: ``B x K`` int64 GT class, ``C`` for unmatched queries.
        matched: ``B x K`` bool.
        valid: optional ``B x H x W`` / ``B x HW`` bool; False pixels are void too (padding).
        unmatched_weight: constant weight of the void terms instead of the void ratio.
        log_probs: ``mask_logits`` already hold ``log_softmax_K`` (shared with other terms);
            the value is the same.

    Returns:
        dict of fp32 scalars ``'cls'`` and ``'mask'`` (unweighted; kMaX's COCO weights are 3.0
        for each).
    """
    logits, targets, matched = check_query_targets(mask_logits, target_masks, matched)
    b, k, n = logits.shape
    if cls_logits.dim() != 3 or cls_logits.shape[:2] != (b, k) or cls_logits.shape[2] < 2:
        raise ValueError(f'cls_logits must be B x K x (C + 1) with B x K = {b} x {k}, '
                         f'got {shape_str(cls_logits)}')
    if target_labels.shape != (b, k):
        raise ValueError(f'target_labels must be B x K = {b} x {k}, '
                         f'got {shape_str(target_labels)}')
    num_classes = cls_logits.shape[2] - 1
    labels = target_labels.to(device=logits.device, dtype=torch.long)
    # one host sync for both checks
    bad_range = (labels < 0) | (labels > num_classes)
    bad_void = matched & (labels == num_classes)
    if bool((bad_range | bad_void).any()):
        if bool(bad_range.any()):
            raise ValueError(f'target_labels must lie in [0, {num_classes}] ({num_classes} = '
                             'void)')
        raise ValueError('a matched query has the void label')
    labels = torch.where(matched, labels, torch.full_like(labels, num_classes))
    valid = flatten_pixels(valid, 'valid', b, n)

    with fp32_island(logits):
        t = targets.float()
        non_void = ~void_pixels(t)  # B x HW
        if valid is not None:
            non_void = non_void & valid.to(device=t.device, dtype=torch.bool)
        nv = non_void.unsqueeze(1).float()  # B x 1 x HW
        probs = logits.float().exp() if log_probs else logits.float().softmax(dim=1)  # B x K x HW
        p = probs * nv
        t = t * nv
        inter = (p * t).sum(dim=2)  # B x K
        p_sum, t_sum = p.sum(dim=2), t.sum(dim=2)
        dice_loss = 1.0 - (2.0 * inter + DICE_SMOOTH) / (p_sum + t_sum + DICE_SMOOTH)

        log_q = cls_logits.float().log_softmax(dim=-1)  # B x K x (C + 1)
        log_q_y = log_q.gather(2, labels.unsqueeze(2)).squeeze(2)  # B x K
        zero = log_q_y.new_zeros(())
        with torch.no_grad():
            cls_prob = log_q_y.exp().clamp(min=MIN_WEIGHT)
            sim = inter / ((p_sum + t_sum) / 2.0 + SIM_EPS)
            pos_w = ALPHA * sim.clamp(min=MIN_WEIGHT)
            if unmatched_weight is None:
                void_mass = (probs * (1.0 - nv)).sum(dim=2)
                ratio = void_mass / (probs.sum(dim=2) + SIM_EPS)
                neg_w = (1.0 - ALPHA) * ratio.clamp(min=MIN_WEIGHT)
            else:
                neg_w = torch.full_like(pos_w, (1.0 - ALPHA) * float(unmatched_weight))
            cls_w = torch.where(matched, pos_w, neg_w)
        mask_w = torch.where(matched, cls_prob, zero)
        mask_term = (mask_w * dice_loss).sum(dim=1).mul(ALPHA / k).mean()
        cls_term = (cls_w * -log_q_y).sum(dim=1).div(k).mean()
    return dict(cls=cls_term, mask=mask_term)


__all__ = ['pq_style_loss']
