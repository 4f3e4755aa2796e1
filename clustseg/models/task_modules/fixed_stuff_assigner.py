"""Matching with stuff queries tied to their class (ClustSeg's memory-bank stuff centers).

ClustSeg's panoptic queries are 75 image-adaptive thing centers and 53 stuff centers, one per
stuff class, read from the class memory bank: a stuff query *is* its class, so it is matched
by its class, not by cost (the same split as Panoptic SegFormer, Li et al. CVPR 2022, whose
stuff queries are one per class with fixed assignment). Only thing queries and thing segments
go through the Hungarian algorithm (scipy's ``linear_sum_assignment``, as mmdet's
``HungarianAssigner``), on the costs of mmdet's cost registry.
"""
from typing import List, Optional, Union

import numpy as np
import torch
from mmdet.models.task_modules.assigners import AssignResult, HungarianAssigner
from mmengine import ConfigDict
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .registry import TASK_UTILS


def fixed_stuff_gt_inds(cost: Tensor,
                        gt_labels: Tensor,
                        query_stuff_classes: Tensor,
                        num_things_classes: Optional[int] = None) -> Tensor:
    """:func:`fixed_stuff_assignment` of S cost matrices at once (e.g. every supervised
    E-step of one image): one transfer of ``cost`` (``S x K x M``) to the host, then the
    stuff-by-class rule and a Hungarian problem per matrix on the host. Returns ``S x K``
    int64 on the CPU, mmdet's ``gt_inds`` convention (0 = unmatched, ``m + 1`` = GT ``m``)."""
    s, k, m = cost.shape if cost.dim() == 3 else (-1, -1, -1)
    if cost.dim() != 3 or gt_labels.shape != (m, ) or query_stuff_classes.shape != (k, ):
        raise ValueError(f'cost must be [S x] K x M, gt_labels M and query_stuff_classes K, '
                         f'got {tuple(cost.shape)}, {tuple(gt_labels.shape)}, '
                         f'{tuple(query_stuff_classes.shape)}')
    qsc = query_stuff_classes.detach().long().cpu()
    labels = gt_labels.detach().long().cpu()
    stuff_q = torch.nonzero(qsc >= 0, as_tuple=False).squeeze(1)
    if torch.unique(qsc[stuff_q]).numel() != stuff_q.numel():
        raise ValueError('query_stuff_classes names a stuff class more than once')
    if num_things_classes is not None:
        gt_is_stuff = labels >= num_things_classes
    else:
        gt_is_stuff = torch.isin(labels, qsc[stuff_q])
    cost_np = cost.detach().float().cpu().numpy()  # S x K x M, the one transfer
    # stuff: each stuff query's candidate segments (its class); the lowest cost wins
    class_to_query = {int(c): int(q) for q, c in zip(stuff_q.tolist(), qsc[stuff_q].tolist())}
    candidates = {}
    for g in torch.nonzero(gt_is_stuff, as_tuple=False).squeeze(1).tolist():
        q = class_to_query.get(int(labels[g]))
        if q is not None:
            candidates.setdefault(q, []).append(g)
    # things: Hungarian over thing queries x thing segments
    thing_q = torch.nonzero(qsc < 0, as_tuple=False).squeeze(1).numpy()
    thing_g = torch.nonzero(~gt_is_stuff, as_tuple=False).squeeze(1).numpy()
    gt_inds = np.zeros((s, k), dtype=np.int64)
    for i in range(s):
        for q, gs in candidates.items():
            gt_inds[i, q] = gs[int(np.argmin(cost_np[i, q, gs]))] + 1  # first of equal costs
        if thing_q.size and thing_g.size:
            rows, cols = linear_sum_assignment(cost_np[i][np.ix_(thing_q, thing_g)])
            gt_inds[i, thing_q[rows]] = thing_g[cols] + 1
    return torch.from_numpy(gt_inds)


def fixed_stuff_assignment(cost: Tensor,
                           gt_labels: Tensor,
                           query_stuff_classes: Tensor,
                           num_things_classes: Optional[int] = None) -> AssignResult:
    """Assign stuff segments to their class's query, Hungarian for the rest.

    - A GT segment is *stuff* when ``gt_labels >= num_things_classes`` (mmdet's panoptic
      convention), or, with ``num_things_classes=None``, when its class is the class of some
      stuff query. Every other segment is a *thing*.
    - Stuff segment of class ``c`` -> the query with ``query_stuff_classes == c``. If several
      segments share that class (mmdet merges stuff per class, so only after unusual
      preprocessing) the one of lowest ``cost`` for that query wins and the others stay
      unmatched; a stuff segment whose class has no query stays unmatched.
    - Thing segments <-> thing queries (``query_stuff_classes == -1``) by minimum total
      ``cost`` (rectangular Hungarian; surplus segments stay unmatched). Stuff queries never
      take a thing segment and thing queries never take a stuff segment.

    Args:
        cost: ``K x M`` matching cost (lower is better), e.g. the sum of an mmdet
            ``HungarianAssigner``'s costs computed on *all* K queries.
        gt_labels: ``M`` int64 GT classes.
        query_stuff_classes: ``K`` int64, the stuff class of each stuff query, ``-1`` for
            thing queries; a class may appear at most once.
        num_things_classes: classes ``< num_things_classes`` are things (optional).

    Returns:
        mmdet ``AssignResult``: ``gt_inds`` (``K``, 0 = unmatched, ``m + 1`` = GT ``m``),
        ``labels`` (``K``, -1 for unmatched), ``num_gts = M``, ``max_overlaps = None``.
    """
    if cost.dim() != 2:
        raise ValueError(f'cost must be K x M, got {tuple(cost.shape)}')
    device = gt_labels.device
    gt_inds = fixed_stuff_gt_inds(cost[None], gt_labels, query_stuff_classes,
                                  num_things_classes)[0]
    labels = gt_labels.detach().long().cpu()
    assigned = torch.where(gt_inds > 0, labels[(gt_inds - 1).clamp(min=0)],
                           torch.full_like(gt_inds, -1)) if labels.numel() else \
        torch.full_like(gt_inds, -1)
    return AssignResult(num_gts=cost.shape[1], gt_inds=gt_inds.to(device), max_overlaps=None,
                        labels=assigned.to(device))


@TASK_UTILS.register_module()
class FixedStuffHungarianAssigner(HungarianAssigner):
    """mmdet ``HungarianAssigner`` whose stuff queries are matched by their fixed class.

    The costs (built from mmdet's ``TASK_UTILS``, e.g. ``PQProductCost``) are computed for
    *all* K queries against all GT segments, then :func:`fixed_stuff_assignment` assigns.
    Without stuff queries it is the plain ``HungarianAssigner``.

    Args:
        match_costs: cost config(s), as for ``HungarianAssigner``.
        num_things_classes: classes ``< num_things_classes`` are things (optional, see
            :func:`fixed_stuff_assignment`).

    ``assign(pred_instances, gt_instances, img_meta=None, query_stuff_classes=None)``: the
    ``K`` stuff classes come from the argument, from ``pred_instances.stuff_classes`` or from
    ``img_meta['query_stuff_classes']`` (how :class:`ClustSegHead` passes them).
    """

    def __init__(self,
                 match_costs: Union[List[Union[dict, ConfigDict]], dict, ConfigDict],
                 num_things_classes: Optional[int] = None) -> None:
        super().__init__(match_costs)
        self.num_things_classes = num_things_classes

    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               img_meta: Optional[dict] = None,
               query_stuff_classes: Optional[Tensor] = None,
               **kwargs) -> AssignResult:
        if query_stuff_classes is None:
            query_stuff_classes = pred_instances.get('stuff_classes', None)
        if query_stuff_classes is None and img_meta is not None:
            query_stuff_classes = img_meta.get('query_stuff_classes', None)
        if query_stuff_classes is None:
            return super().assign(pred_instances, gt_instances, img_meta, **kwargs)
        num_gts, num_preds = len(gt_instances), len(pred_instances)
        device = gt_instances.labels.device
        if num_gts == 0 or num_preds == 0:
            return AssignResult(
                num_gts=num_gts,
                gt_inds=torch.zeros(num_preds, dtype=torch.long, device=device),
                max_overlaps=None,
                labels=torch.full((num_preds, ), -1, dtype=torch.long, device=device))
        return fixed_stuff_assignment(self.cost(pred_instances, gt_instances, img_meta),
                                      gt_instances.labels, query_stuff_classes,
                                      self.num_things_classes)

    def cost(self, pred_instances, gt_instances, img_meta=None) -> Tensor:
        """The sum of the match costs: K x M (or S x K x M for costs that take a leading
        S, as :class:`PQProductCost` does)."""
        return torch.stack([
            c(pred_instances=pred_instances, gt_instances=gt_instances, img_meta=img_meta)
            for c in self.match_costs
        ]).sum(dim=0)

    def assign_many(self, scores: Tensor, masks: Tensor, gt_instances: InstanceData,
                    query_stuff_classes: Tensor) -> Tensor:
        """S predictions of one image matched at once (:func:`fixed_stuff_gt_inds`): scores
        ``S x K x C'``, masks ``S x K x ...`` (the match costs must take that leading S, as
        :class:`PQProductCost` does) -> ``S x K`` CPU ``gt_inds`` (0 = unmatched, ``m + 1`` =
        GT ``m``), what :meth:`assign` gives for each of the S predictions."""
        s, k = scores.shape[:2]
        if len(gt_instances) == 0 or k == 0:
            return torch.zeros(s, k, dtype=torch.long)
        pred = InstanceData(scores=scores, masks=masks)
        return fixed_stuff_gt_inds(self.cost(pred, gt_instances), gt_instances.labels,
                                   query_stuff_classes, self.num_things_classes)


__all__ = ['fixed_stuff_assignment', 'fixed_stuff_gt_inds', 'FixedStuffHungarianAssigner']
