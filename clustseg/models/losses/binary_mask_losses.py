"""Per-mask binary losses of matched (query, segment) pairs, as per-mask terms that the heads
sum and normalise themselves (per E-step or per group of E-steps).

Two users:

- the instance protocol (Mask2Former, Cheng et al. CVPR 2022; the paper's A.2), in
  ``ClustSegInstanceHead``: points drawn by :func:`uncertain_point_coords` (12544 points,
  oversample 3, 75 % importance sampling, from mmdet's Mask2Former configs), the logits read
  there by :func:`read_mask_points` and the binary GT by :func:`read_binary_points` (from its
  :func:`binary_corner_codes`), then :func:`mask_bce_dice_terms`: what mmdet 3.3's
  ``Mask2FormerHead._loss_by_feat_single`` computes - sigmoid BCE through
  ``mmdet.models.losses.cross_entropy_loss.binary_cross_entropy`` (= ``CrossEntropyLoss(
  use_sigmoid=True)``) averaged over masks x points, and naive dice with ``eps = 1`` through
  ``mmdet.models.losses.dice_loss.dice_loss`` (= ``DiceLoss(use_sigmoid=True,
  naive_dice=True, eps=1.0)``) averaged over masks;
- the thing / stuff terms of the panoptic objective (the paper's Eq. 12), in
  ``ClustSegPanopticHead``: :func:`matched_mask_terms`, dense binary CE + dice of the selected
  matched queries, with the mask probability taken either as the E-step's softmax over the
  ``K`` clusters (``activation='softmax'``) or per mask (``'sigmoid'``), void pixels
  excluded; or, point-sampled, the same reads and :func:`mask_bce_dice_terms` as the instance
  head.
"""
import functools
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.models.losses.cross_entropy_loss import binary_cross_entropy
from mmdet.models.losses.dice_loss import dice_loss
from torch import Tensor

from .loss_utils import check_query_targets, flatten_pixels, fp32_island, shape_str
from .query_targets import void_pixels


def uncertain_point_coords(mask_logits: Tensor,
                           num_points: int,
                           oversample_ratio: float = 3.0,
                           importance_sample_ratio: float = 0.75) -> Tensor:
    """mmdet's ``get_uncertain_point_coords_with_randomness`` (class-agnostic masks) with an
    unsorted top-k: the same random draws and the same point set, in another order (the
    losses read the points as a set; 2.4x faster top-k on CPU for 20 x 37632 -> 9408).

    ``mask_logits``: ``N x 1 x h x w`` -> ``N x num_points x 2`` coordinates in [0, 1]^2: the
    ``importance_sample_ratio x num_points`` of ``oversample_ratio x num_points`` uniform
    points with the logit closest to 0, then uniform points for the rest.
    """
    if oversample_ratio < 1 or not 0 <= importance_sample_ratio <= 1:
        raise ValueError('need oversample_ratio >= 1 and 0 <= importance_sample_ratio <= 1, '
                         f'got {oversample_ratio}, {importance_sample_ratio}')
    n = mask_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    coords = torch.rand(n, num_sampled, 2, device=mask_logits.device)
    uncertainty = -point_sample(mask_logits, coords)[:, 0].abs()  # N x num_sampled
    num_uncertain = int(importance_sample_ratio * num_points)
    idx = uncertainty.topk(num_uncertain, dim=1, sorted=False)[1]
    coords = coords.gather(1, idx.unsqueeze(2).expand(-1, -1, 2))
    if num_points > num_uncertain:
        coords = torch.cat(
            (coords, torch.rand(n, num_points - num_uncertain, 2, device=mask_logits.device)),
            dim=1)
    return coords


#: row k: bit k of each of the 16 corner codes (bits 0..3: the top-left, top-right,
#: bottom-left and bottom-right pixels of a bilinear read's 2 x 2 neighbourhood)
_CORNER_BITS = torch.tensor([[(code >> k) & 1 for code in range(16)] for k in range(4)],
                            dtype=torch.float32)  # 4 x 16


@functools.lru_cache(maxsize=None)
def _corner_bits(device: torch.device) -> Tensor:
    """:data:`_CORNER_BITS` on ``device``, copied there once (no copy, hence no host sync,
    per read)."""
    return _CORNER_BITS.to(device)


def binary_corner_codes(masks: Tensor) -> Tensor:
    """Binary masks ``L x H x W`` (values 0 / 1, any dtype) -> ``L x (H + 1) x (W + 1)`` uint8
    codes for :func:`read_binary_points`: entry ``(y, x)`` holds, as bits 0..3, the pixels
    ``(y - 1, x - 1)``, ``(y - 1, x)``, ``(y, x - 1)`` and ``(y, x)`` of the masks (zero outside),
    i.e. the whole 2 x 2 neighbourhood of a bilinear read, so that a read gathers one byte
    instead of four. Computed once per set of masks (e.g. a training step's GT)."""
    if masks.dim() != 3:
        raise ValueError(f'masks must be L x H x W, got {shape_str(masks)}')
    m = F.pad((masks > 0).to(torch.uint8), (1, 1, 1, 1))  # L x (H + 2) x (W + 2)
    return m[:, :-1, :-1] | (m[:, :-1, 1:] << 1) | (m[:, 1:, :-1] << 2) | (m[:, 1:, 1:] << 3)


def read_binary_points(codes: Tensor, coords: Tensor, index: Optional[Tensor] = None) -> Tensor:
    """Binary masks read at points as mmcv's ``point_sample`` reads them (bilinear,
    ``align_corners=False``, zero outside) from their :func:`binary_corner_codes`: one byte
    gathered per point and no fp32 copy of the masks, so the cost follows the points, not the
    masks' resolution.

    Args:
        codes: ``L x (H + 1) x (W + 1)`` uint8 of :func:`binary_corner_codes`.
        coords: ``N x P x 2`` in [0, 1]^2, x then y (as Mask2Former's points; not checked,
            to keep the read free of host syncs).
        index: ``N`` int64, the mask each row reads (default: row ``n`` reads mask ``n``).

    Returns:
        ``N x P`` fp32.
    """
    if codes.dim() != 3 or codes.dtype != torch.uint8 or coords.dim() != 3 or \
            coords.shape[-1] != 2:
        raise ValueError(f'codes must be L x (H + 1) x (W + 1) uint8 and coords N x P x 2, got '
                         f'{shape_str(codes)} ({codes.dtype}) and {shape_str(coords)}')
    if index is None:
        index = torch.arange(coords.shape[0], device=coords.device)
    h, w = codes.shape[-2] - 1, codes.shape[-1] - 1
    x = coords[..., 0].float() * w - 0.5  # N x P, pixel centres at integers
    y = coords[..., 1].float() * h - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    # x0, y0 in [-1, W - 1] for points in [0, 1): code (y0 + 1, x0 + 1) holds their 2 x 2
    at = (index.to(coords.device).long()[:, None] * (h + 1) + (y0.long() + 1).clamp_(0, h)) \
        * (w + 1) + (x0.long() + 1).clamp_(0, w)
    code = codes.reshape(-1)[at].long()  # N x P
    tl, tr, bl, br = _corner_bits(coords.device)[:, code]  # each N x P
    return torch.lerp(torch.lerp(tl, tr, fx), torch.lerp(bl, br, fx), fy)


def read_mask_points(mask_logits: Tensor, coords: Tensor) -> Tensor:
    """``N x h x w`` logits read (bilinear, with gradient) at ``N x P x 2`` points -> ``N x P``
    fp32."""
    with fp32_island(mask_logits):
        return point_sample(mask_logits.float().unsqueeze(1), coords).squeeze(1)


def mask_bce_dice_terms(mask_logits: Tensor, gt_masks: Tensor, dice_eps: float = 1.0,
                        keep: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Each mask's sigmoid BCE (mean over its points) and naive dice, through mmdet's
    ``binary_cross_entropy`` / ``dice_loss`` unreduced: ``mask_logits`` / ``gt_masks``
    ``N x ...`` (same shape, targets in ``[0, 1]``) -> ``(bce N, dice N)`` fp32; the caller
    sums them and divides by its number of masks (mmdet's ``Mask2FormerHead``
    normalisation), or weights masks per group. ``keep`` (bool, same shape; None: every
    point): the points the terms read, the others left out of both (kMaX's void rule on
    points: the BCE is the mean over the kept points, 0 for a mask with none)."""
    if mask_logits.shape != gt_masks.shape or mask_logits.dim() < 2:
        raise ValueError(f'mask_logits ({shape_str(mask_logits)}) and gt_masks '
                         f'({shape_str(gt_masks)}) must have the same N x ... shape')
    if keep is not None and keep.shape != mask_logits.shape:
        raise ValueError(f'keep ({shape_str(keep)}) must have the shape of mask_logits '
                         f'({shape_str(mask_logits)})')
    with fp32_island(mask_logits):
        x = mask_logits.float().flatten(1)  # N x P
        t = gt_masks.float().flatten(1)
        p = x.sigmoid()
        if keep is None:
            bce = binary_cross_entropy(x, t, reduction='none').mean(dim=1)
        else:
            k = keep.flatten(1).to(x.dtype)  # N x P, 1 = read
            bce = (binary_cross_entropy(x, t, reduction='none') * k).sum(dim=1) \
                / k.sum(dim=1).clamp(min=1.0)
            p, t = p * k, t * k
        dice = dice_loss(p, t, eps=dice_eps, naive_dice=True, reduction='none')
    return bce, dice


def sigmoid_class_loss(cls_logits: Tensor,
                       labels: Tensor,
                       no_object_weight: float = 0.1,
                       avg_factor: Union[float, Tensor, None] = None,
                       check_labels: bool = True) -> Tensor:
    """Per-class sigmoid BCE of a class FFN (the paper's "small FFN ... binary cross-entropy").

    Targets are one-hot over the ``C`` classes; a query labelled ``C`` (no object) has an
    all-zero target; a query labelled ``-1`` is ignored. Computed by mmdet's
    ``binary_cross_entropy`` (= ``CrossEntropyLoss(use_sigmoid=True)``):
    ``loss = sum_q w_q sum_c BCE(x_qc, [y_q = c]) / avg_factor`` with ``w_q = 1`` for matched
    queries and ``no_object_weight`` for no-object queries, ``avg_factor = sum_q w_q`` by
    default - the normalisation of a weighted PyTorch cross-entropy, i.e. of Mask2Former's
    softmax class loss, whose no-object weight 0.1 (mmdet config ``class_weight=[1.0] * C +
    [0.1]``) is the default here; the paper does not give one.

    Args:
        cls_logits: ``B x K x C`` (or ``N x C``) class logits, no void column.
        labels: ``B x K`` (or ``N``) int64 in ``[-1, C]``.
        no_object_weight: weight of the no-object queries.
        avg_factor: normaliser (default: the sum of the query weights, at least 1), or a
            tensor broadcastable to ``labels``: each query's own normaliser (queries of
            several predictions stacked along the batch, each over its prediction's factor;
            the result is then the sum of the per-prediction losses).
        check_labels: check the label range (a device read on a GPU); False for labels made
            by a matching, which are in range by construction.

    Returns:
        fp32 scalar.
    """
    c = cls_logits.shape[-1]
    if cls_logits.shape[:-1] != labels.shape:
        raise ValueError(f'cls_logits ({shape_str(cls_logits)}) must be labels.shape x C, '
                         f'labels {shape_str(labels)}')
    x = cls_logits.reshape(-1, c)
    y = labels.reshape(-1).to(device=x.device, dtype=torch.long)
    if check_labels and bool(((y < -1) | (y > c)).any()):
        raise ValueError(f'labels must lie in [-1, {c}] (-1 ignored, {c} no object)')
    if x.shape[0] == 0:
        return x.float().sum() * 0.0
    with fp32_island(x):
        w = torch.ones(y.shape, dtype=torch.float32, device=y.device)
        w = w.masked_fill(y == c, float(no_object_weight)).masked_fill(y < 0, 0.0)
        if isinstance(avg_factor, Tensor):  # per query: the weights carry the normalisers
            norm = avg_factor.to(device=w.device, dtype=torch.float32).expand_as(labels)
            w = w / norm.reshape(-1).clamp(min=1.0)
            avg = 1.0
        else:
            avg = max(float(w.sum()) if avg_factor is None else float(avg_factor), 1.0)
        # one-hot targets given as such (mmdet expands class indices with a nonzero, a device
        # read on a GPU): all-zero rows for no object (C) and ignored queries (-1, weight 0)
        t = y[:, None] == torch.arange(c, device=y.device)  # N x C
        return binary_cross_entropy(x.float(), t, weight=w[:, None], avg_factor=avg)


def matched_mask_terms(mask_logits: Tensor,
                       target_masks: Tensor,
                       select: Tensor,
                       activation: str = 'softmax',
                       valid: Optional[Tensor] = None,
                       ignore_void: bool = True,
                       dice_eps: float = 1.0,
                       log_probs: Optional[Tensor] = None
                       ) -> Tuple[Tuple[Tensor, Tensor], Tensor, Tensor]:
    """Dense binary CE and dice of each selected matched query (the thing / stuff terms of
    Eq. 12 before the head sums and normalises them).

    With ``p = softmax_K(mask_logits)`` (``'softmax'``, the E-step's assignment) or
    ``sigmoid(mask_logits)`` (``'sigmoid'``) and ``V`` the valid pixels, for each selected
    query ``k`` with target ``t_k``:
    ``ce_k = mean_{i in V} -[t log p + (1 - t) log(1 - p)]`` and
    ``dice_k = 1 - (2 sum_V p t + eps) / (sum_V p + sum_V t + eps)``.
    Only the selected queries' maps are evaluated (the softmax still runs over all K), after
    one host sync (the selection's size).

    Args:
        mask_logits: ``B x K x H x W`` (or ``B x K x HW``) mask logits of *all* queries (the
            softmax runs over all of them).
        target_masks: same shape, query-aligned targets of all matched queries (things and
            stuff: they define the void pixels).
        select: ``B x K`` bool, the queries evaluated (e.g. the matched ones).
        activation: ``'softmax'`` (over the K queries) or ``'sigmoid'``.
        valid: optional ``B x H x W`` / ``B x HW`` bool, False = excluded (padding).
        ignore_void: exclude pixels covered by no target (kMaX's void rule).
        dice_eps: dice smoothing (1.0 as mmdet's Mask2Former config).
        log_probs: ``mask_logits``' log-softmax over K, same shape, when the caller has it
            (``'softmax'`` only; shared with its other terms).

    Returns:
        ``((image, query) indices of the N selected queries, in (image, query) order, ce N,
        dice N)``, fp32.
    """
    if activation not in ('softmax', 'sigmoid'):
        raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
    logits, targets, select = check_query_targets(mask_logits, target_masks, select)
    b, k, n = logits.shape
    valid = flatten_pixels(valid, 'valid', b, n)
    with fp32_island(logits):
        t_all = targets.float()
        keep = torch.ones(b, n, dtype=torch.bool, device=t_all.device)
        if ignore_void:
            keep = keep & ~void_pixels(t_all)
        if valid is not None:
            keep = keep & valid.to(device=t_all.device, dtype=torch.bool)
        idx = select.nonzero(as_tuple=True)  # (image, query) of the N selected: one sync
        kf = keep[idx[0]].float()  # N x HW, the selected queries' images
        t = t_all[idx]  # N x HW
        if activation == 'softmax':
            if log_probs is None:
                log_probs = logits.float().log_softmax(dim=1)
            log_p = log_probs.float().flatten(2)[idx]  # N x HW
            log_1mp = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))
            p = log_p.exp()
        else:
            x = logits.float()[idx]
            log_p, log_1mp, p = F.logsigmoid(x), F.logsigmoid(-x), x.sigmoid()
        ce = (-(t * log_p + (1.0 - t) * log_1mp) * kf).sum(dim=1) / \
            kf.sum(dim=1).clamp(min=1.0)  # N
        p, t = p * kf, t * kf
        dice = 1.0 - (2.0 * (p * t).sum(dim=1) + dice_eps) / (
            p.sum(dim=1) + t.sum(dim=1) + dice_eps)  # N
    return idx, ce, dice


__all__ = ['uncertain_point_coords', 'binary_corner_codes', 'read_binary_points',
           'read_mask_points', 'mask_bce_dice_terms', 'sigmoid_class_loss', 'matched_mask_terms']
