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

from .loss_utils import check_mask_pair, flatten_masks, flatten_pixels, fp32_island, shape_str
from .query_targets import void_pixels

#: focal alpha of the positive terms (deeplab2 ``focal_loss_alpha``)
ALPHA = 0.75
#: lower clamp of both detached weights (deeplab2 / kMaX)
MIN_WEIGHT = 1e-5
#: smoothing of the dice loss (kMaX port)
DICE_SMOOTH = 1.0
#: denominator epsilon of the dice similarity and of the void ratio (deeplab2)
SIM_EPS = 1e-5


def void_ratio(probs: Tensor, non_void: Tensor) -> Tensor:
    """Each query's share of its softmax-over-``K`` mass that lies on void pixels (deeplab2's
    ``mask_void_ratio``, the weight of an unmatched query's void class term), no gradient.

    Args:
        probs: ``B x K x H x W`` (or ``B x K x HW``) softmax over the ``K`` queries (callers
            holding the log-softmax exponentiate it, in place where they no longer need it:
            one ``K``-wide tensor, not two).
        non_void: ``B x H x W`` / ``B x HW`` bool, True = covered by a matched target (and
            not padding).

    Returns:
        ``B x K`` fp32: ``sum_{void px} p_k / (sum_px p_k + eps)``, ``eps = SIM_EPS``.
    """
    p = flatten_masks(probs, 'probs')
    b, _, n = p.shape
    non_void = flatten_pixels(non_void, 'non_void', b, n)
    with torch.no_grad(), fp32_island(p):
        # B x HW x 2: (void, any pixel); one batched product reads the probabilities once
        w = torch.stack([(~non_void.bool()).float(), torch.ones_like(non_void, dtype=torch.float)],
                        dim=2)
        mass = torch.bmm(p.float(), w)  # B x K x 2
        return mass[..., 0] / (mass[..., 1] + SIM_EPS)


def pq_style_loss(cls_logits: Tensor,
                  mask_logits: Tensor,
                  target_masks: Tensor,
                  target_labels: Tensor,
                  matched: Tensor,
                  valid: Optional[Tensor] = None,
                  log_probs: bool = False,
                  row_query: Optional[Tensor] = None,
                  void_ratios: Optional[Tensor] = None,
                  check_labels: bool = True) -> Dict[str, Tensor]:
    """PQ-style loss: dice x detached class prob, and class CE x detached dice.

    With ``p = softmax_K(mask_logits)`` zeroed on void pixels, ``t`` the matched target,
    ``q_k = softmax(cls_logits_k)``:

    - ``mask = mean_b alpha / K * sum_{k matched} max(q_k(c_k), min_w).detach() * dice_loss_k``
      with ``dice_loss_k = 1 - (2 <p_k, t_k> + s) / (|p_k| + |t_k| + s)``;
    - ``cls = mean_b 1 / K * sum_k w_k * (-log q_k(y_k))``, ``y_k = c_k`` (matched) or void
      (``C``, unmatched), ``w_k = alpha * max(sim_k, min_w)`` for matched queries with the dice
      similarity ``sim_k = <p_k, t_k> / ((|p_k| + |t_k|) / 2 + eps)`` (detached), and
      ``w_k = (1 - alpha) * max(void_ratio_k, min_w)`` (detached) for unmatched ones
      (:func:`void_ratio`).

    Constants (deeplab2 / kMaX): ``alpha = ALPHA = 0.75``, ``min_w = MIN_WEIGHT = 1e-5``,
    ``s = DICE_SMOOTH = 1``, ``eps = SIM_EPS = 1e-5``.

    kMaX divides the class term by the number of non-zero terms (``K`` unless one is exactly 0).

    Row form (``row_query`` given): the mask terms only need the matched queries' maps, so a
    caller with ``M`` ground-truth segments per image, usually far fewer than ``K``, passes
    ``mask_logits`` / ``target_masks`` as ``B x M x ...`` rows: row ``m`` holds the
    log-softmax over ``K`` of the query matched to segment ``m`` (``row_query[b, m]``, -1 = no
    query: its target must be zero) and that segment's target. The unmatched queries' void
    ratios, which read every query's map, then come as ``void_ratios``. The value is the same
    as with the ``B x K`` maps.

    Args:
        cls_logits: ``B x K x (C + 1)`` class logits, last column = void / no object.
        mask_logits: ``B x K x H x W`` (or ``B x K x HW``) mask logits; in row form
            ``B x M x ...`` log-probabilities.
        target_masks: same shape, matched GT masks (0 for unmatched queries / rows), see
            :func:`~clustseg.models.losses.build_query_targets`.
        target_labels: ``B x K`` int64 GT class, ``C`` for unmatched queries.
        matched: ``B x K`` bool.
        valid: optional ``B x H x W`` / ``B x HW`` bool; False pixels are void too (padding).
        log_probs: ``mask_logits`` already hold ``log_softmax_K`` (shared with other terms);
            the value is the same. Required in row form.
        row_query: ``B x M`` int64, the row form's query of each row (-1 = none).
        void_ratios: ``B x K``, :func:`void_ratio` of the full maps (row form only).
        check_labels: check that the labels lie in ``[0, C]`` and that no matched query has
            the void label (a host read of the device); False for labels made from a
            matching (:func:`gather_query_labels`), valid by construction.

    Returns:
        dict of fp32 scalars ``'cls'`` and ``'mask'`` (unweighted; kMaX's COCO weights are 3.0
        for each).
    """
    rows = row_query is not None
    if rows != (void_ratios is not None) or (rows and not log_probs):
        raise ValueError('the row form needs row_query, void_ratios and log_probs=True together')
    logits, targets = check_mask_pair(mask_logits, target_masks)
    b, r, n = logits.shape
    if cls_logits.dim() != 3 or cls_logits.shape[0] != b or cls_logits.shape[2] < 2 or \
            (not rows and cls_logits.shape[1] != r):
        raise ValueError(f'cls_logits must be B x K x (C + 1) with B = {b}' +
                         ('' if rows else f', K = {r}') + f', got {shape_str(cls_logits)}')
    k = cls_logits.shape[1]
    for name, t in (('target_labels', target_labels), ('matched', matched)) + \
            ((('void_ratios', void_ratios), ) if rows else ()):
        if t.shape != (b, k):
            raise ValueError(f'{name} must be B x K = {b} x {k}, got {shape_str(t)}')
    if rows and row_query.shape != (b, r):
        raise ValueError(f'row_query must be B x M = {b} x {r}, got {shape_str(row_query)}')
    matched = matched.to(device=logits.device, dtype=torch.bool)
    num_classes = cls_logits.shape[2] - 1
    labels = target_labels.to(device=logits.device, dtype=torch.long)
    if check_labels:  # one host sync for both checks
        bad_range = (labels < 0) | (labels > num_classes)
        bad_void = matched & (labels == num_classes)
        if bool((bad_range | bad_void).any()):
            if bool(bad_range.any()):
                raise ValueError(f'target_labels must lie in [0, {num_classes}] '
                                 f'({num_classes} = void)')
            raise ValueError('a matched query has the void label')
    labels = torch.where(matched, labels, torch.full_like(labels, num_classes))
    valid = flatten_pixels(valid, 'valid', b, n)
    if not rows:  # the B x K maps are the rows of every matched query
        row_query = torch.where(matched, torch.arange(k, device=matched.device)[None],
                                torch.full_like(labels, -1))

    with fp32_island(logits):
        t = targets.float()
        non_void = ~void_pixels(t)  # B x HW
        if valid is not None:
            non_void = non_void & valid.to(device=t.device, dtype=torch.bool)
        log_p = logits.float() if log_probs else logits.float().log_softmax(dim=1)
        p = log_p.exp()  # B x R x HW
        if not rows:
            void_ratios = void_ratio(p, non_void)
        nv = non_void.unsqueeze(1).float()  # B x 1 x HW
        p = p * nv
        t = t * nv
        inter = (p * t).sum(dim=2)  # B x R
        p_sum, t_sum = p.sum(dim=2), t.sum(dim=2)
        dice_loss = 1.0 - (2.0 * inter + DICE_SMOOTH) / (p_sum + t_sum + DICE_SMOOTH)

        log_q = cls_logits.float().log_softmax(dim=-1)  # B x K x (C + 1)
        log_q_y = log_q.gather(2, labels.unsqueeze(2)).squeeze(2)  # B x K
        has_query = row_query >= 0  # B x R
        q = row_query.clamp(min=0)
        with torch.no_grad():
            cls_prob = log_q_y.gather(1, q).exp().clamp(min=MIN_WEIGHT)  # B x R
            sim = inter / ((p_sum + t_sum) / 2.0 + SIM_EPS)  # B x R
            # each matched query's similarity, from its row (one row per query)
            sim_q = torch.zeros_like(log_q_y).scatter_add_(1, q, sim * has_query)
            pos_w = ALPHA * sim_q.clamp(min=MIN_WEIGHT)
            neg_w = (1.0 - ALPHA) * void_ratios.float().clamp(min=MIN_WEIGHT)
            cls_w = torch.where(matched, pos_w, neg_w)
        mask_w = torch.where(has_query, cls_prob, torch.zeros_like(cls_prob))
        mask_term = (mask_w * dice_loss).sum(dim=1).mul(ALPHA / k).mean()
        cls_term = (cls_w * -log_q_y).sum(dim=1).div(k).mean()
    return dict(cls=cls_term, mask=mask_term)


__all__ = ['pq_style_loss', 'void_ratio']
