"""Query-aligned targets: turn per-image matching results into ``B x K`` tensors.

The mask-classification losses take their targets aligned with the ``K`` queries (as
kMaX-DeepLab does after matching): query ``k`` of image ``b`` gets the mask and class of the
ground-truth segment it is matched to, unmatched queries get an all-zero mask and the
void / no-object class ``num_classes``.
"""
from typing import NamedTuple, Optional, Sequence, Union

import torch
from torch import Tensor

from .loss_utils import shape_str


class QueryTargets(NamedTuple):
    """Targets aligned with the queries.

    Attributes:
        masks: ``B x K x H x W`` fp32 (matched GT mask, zeros for unmatched queries).
        labels: ``B x K`` int64 (GT class, ``num_classes`` = void for unmatched).
        matched: ``B x K`` bool.
        gt_index: ``B x K`` int64, the matched GT's index in its image (-1 for unmatched), to
            read the same GT at another resolution.
    """
    masks: Tensor
    labels: Tensor
    matched: Tensor
    gt_index: Optional[Tensor] = None


def _gt_inds(a) -> Tensor:
    inds = getattr(a, 'gt_inds', a)  # mmdet AssignResult or a plain tensor
    if not isinstance(inds, Tensor) or inds.dim() != 1:
        raise ValueError('each assignment must be an AssignResult or a K tensor of '
                         f'1-based GT indices, got {shape_str(inds)}')
    return inds


def pad_stack(per_image: Sequence[Tensor]) -> Tensor:
    """Per-image ``M_b x ...`` tensors (masks ``M_b x H x W``, labels ``M_b``; one trailing
    shape, dtype and device) -> ``B x M_max x ...`` (``M_max >= 1``), zero beyond each
    ``M_b``: the padded GT that :func:`gather_matched` reads."""
    m0 = per_image[0]
    out = m0.new_zeros((len(per_image), max(max(int(m.shape[0]) for m in per_image), 1)) +
                       tuple(m0.shape[1:]))
    for i, m in enumerate(per_image):
        out[i, :m.shape[0]] = m
    return out


def gather_matched(padded: Tensor, gt_index: Tensor) -> Tensor:
    """Each query's matched GT entry: ``padded`` B x M x ... (per GT segment, zero-padded to
    the batch's largest M), ``gt_index`` B x K (-1 = unmatched) -> B x K x ..., zeros for
    unmatched queries. A gather, so it needs no host sync on a GPU. The other way round,
    ``padded`` B x K x ... per query and the index of :func:`gt_queries` give each GT
    segment's matched query's entry."""
    matched = gt_index >= 0
    b = torch.arange(gt_index.shape[0], device=gt_index.device)[:, None]
    out = padded[b, gt_index.clamp(min=0)]
    return out * matched.view(matched.shape + (1, ) * (out.dim() - 2)).to(out.dtype)


def gt_queries(gt_index: Tensor, num_gt: int) -> Tensor:
    """The inverse of a one-to-one matching: ``gt_index`` ``... x K`` (each query's matched GT
    index, -1 = unmatched) -> ``... x num_gt`` int64, the query matched to each GT segment
    (-1 = none). With it, :func:`gather_matched` reads the matched queries' maps as one row
    per GT segment (``B x M x ...``) instead of one per query."""
    out = torch.full(gt_index.shape[:-1] + (num_gt + 1, ), -1, dtype=torch.long,
                     device=gt_index.device)
    k = torch.arange(gt_index.shape[-1], device=gt_index.device).expand_as(gt_index)
    # unmatched queries write into the extra last column, dropped below
    slot = torch.where(gt_index >= 0, gt_index, torch.full_like(gt_index, num_gt))
    return out.scatter_(-1, slot.long(), k)[..., :num_gt]


class _GatherLogSoftmax(torch.autograd.Function):
    """:func:`gather_log_softmax`'s forward and its explicit backward."""

    @staticmethod
    def forward(ctx, logits, rows, lse):
        index = rows.clamp(min=0)[..., None].expand(-1, -1, logits.shape[-1])
        out = (logits.gather(1, index) - lse[:, None]) * (rows >= 0)[..., None]
        ctx.save_for_backward(logits, rows, lse)
        return out

    @staticmethod
    def backward(ctx, grad):
        logits, rows, lse = ctx.saved_tensors
        grad = grad * (rows >= 0)[..., None]  # B x M x N
        # d/dx_k of (x_r - lse) summed over the rows: [k = r] - softmax_k, the softmax
        # recomputed from the logits and their logsumexp (one K-wide temporary)
        out = (logits - lse[:, None]).exp_().mul_(-grad.sum(dim=1, keepdim=True))
        index = rows.clamp(min=0)[..., None].expand_as(grad)
        return out.scatter_add_(1, index, grad), None, None


def gather_log_softmax(logits: Tensor, rows: Tensor, lse: Tensor) -> Tensor:
    """``gather_matched(logits.log_softmax(dim=1), rows)`` without the K-wide log-softmax.

    Args:
        logits: ``B x K x N`` fp32 logits (softmax over the K queries).
        rows: ``B x M`` int64, the query each row reads (-1 = none: a zero row), each query
            at most once per image (a one-to-one matching, :func:`gt_queries`).
        lse: ``B x N``, ``logits.logsumexp(dim=1)`` computed by the caller (no gradient is
            taken through it: the backward accounts for the normaliser itself).

    Returns:
        ``B x M x N``: row ``m`` is ``logits[rows[m]] - lse``. Its backward recomputes the
        softmax from ``logits`` and ``lse`` (three K-wide passes), where ``log_softmax`` and a
        gather cost about three in forward, again in a recomputation, and three in backward.
    """
    return _GatherLogSoftmax.apply(logits, rows, lse.detach())


def gather_query_labels(gt_labels: Tensor, gt_index: Tensor, num_classes: int) -> Tensor:
    """Each query's matched GT class: ``gt_labels`` B x M, ``gt_index`` B x K (-1 =
    unmatched: ``num_classes``, the void / no-object label) -> B x K int64."""
    return torch.where(gt_index >= 0, gt_labels.long().gather(1, gt_index.clamp(min=0)),
                       torch.full_like(gt_index, num_classes))


def gather_query_targets(gt_masks: Tensor, gt_labels: Tensor, gt_index: Tensor,
                         num_classes: int) -> QueryTargets:
    """:class:`QueryTargets` of a matching: ``gt_masks`` B x M x H x W and ``gt_labels`` B x M
    (the batch's GT, padded over M), ``gt_index`` B x K (the matched GT's index in its image,
    -1 = unmatched: zero mask, label ``num_classes``)."""
    return QueryTargets(gather_matched(gt_masks, gt_index).float(),
                        gather_query_labels(gt_labels, gt_index, num_classes), gt_index >= 0,
                        gt_index)


def build_query_targets(assignments: Sequence[Union[Tensor, object]],
                        gt_masks: Sequence[Tensor],
                        gt_labels: Sequence[Tensor],
                        num_classes: int) -> QueryTargets:
    """Per-image matching results -> :class:`QueryTargets` (:func:`gather_query_targets`).

    Args:
        assignments: per image, an mmdet ``AssignResult`` or its ``gt_inds`` tensor ``K``
            (mmdet convention: ``i > 0`` = matched to GT ``i - 1``, ``0`` = unmatched,
            ``-1`` = ignored, treated as unmatched).
        gt_masks: per image ``M_b x H x W`` binary masks (the same ``H x W`` for every image,
            i.e. the padded batch shape; padding is 0 = void).
        gt_labels: per image ``M_b`` int class ids in ``[0, num_classes)``.
        num_classes: number of classes; also the void / no-object label.

    Returns:
        :class:`QueryTargets`.
    """
    if not (len(assignments) == len(gt_masks) == len(gt_labels)) or len(gt_masks) == 0:
        raise ValueError('assignments, gt_masks and gt_labels must be non-empty lists of the '
                         f'same length, got {len(assignments)}, {len(gt_masks)}, '
                         f'{len(gt_labels)}')
    inds = [_gt_inds(a) for a in assignments]
    k = inds[0].numel()
    h, w = gt_masks[0].shape[-2:]
    device = gt_masks[0].device
    for i, (gi, gm, gl) in enumerate(zip(inds, gt_masks, gt_labels)):
        if gi.numel() != k:
            raise ValueError(f'image {i}: assignment has {gi.numel()} queries, expected {k}')
        if gm.dim() != 3 or tuple(gm.shape[-2:]) != (h, w) or gm.shape[0] != gl.numel():
            raise ValueError(f'image {i}: gt_masks must be M x {h} x {w} with M = '
                             f'len(gt_labels) = {gl.numel()}, got {shape_str(gm)}')
        if gi.numel() and int(gi.max()) > gm.shape[0]:
            raise ValueError(f'image {i}: assignment names GT {int(gi.max()) - 1} but only '
                             f'{gm.shape[0]} exist')
    masks = pad_stack([gm.to(device=device, dtype=torch.float32) for gm in gt_masks])
    labels = pad_stack([gl.to(device).long() for gl in gt_labels])
    gt_index = torch.stack([gi.to(device).long() for gi in inds]).clamp(min=0) - 1
    return gather_query_targets(masks, labels, gt_index, num_classes)


def void_pixels(target_masks: Tensor) -> Tensor:
    """``B x HW`` bool: pixels covered by no target mask (void, padding, unmatched GT).

    kMaX-DeepLab calls a pixel void when its matched targets sum to < 1; for binary masks
    that is the same as ``< 0.5`` used here, which also tolerates resized (soft) masks.
    """
    t = target_masks.flatten(2) if target_masks.dim() == 4 else target_masks
    return t.float().sum(dim=1) < 0.5


__all__ = ['QueryTargets', 'build_query_targets', 'gather_matched', 'gather_query_targets',
           'gather_log_softmax', 'gather_query_labels', 'gt_queries', 'pad_stack', 'void_pixels']
