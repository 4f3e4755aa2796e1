"""Matching with stuff queries tied to their class (ClustSeg's memory-bank stuff centers).

ClustSeg's panoptic queries are 75 image-adaptive thing centers and 53 stuff centers, one per
stuff class, read from the class memory bank: a stuff query *is* its class, so it is matched
by its class, not by cost (the same split as Panoptic SegFormer, Li et al. CVPR 2022, whose
stuff queries are one per class with fixed assignment). Only thing queries and thing segments
go through the Hungarian algorithm (scipy's ``linear_sum_assignment``, as mmdet's
``HungarianAssigner``), on the costs of mmdet's cost registry.
"""
from typing import List, Optional, Union

import torch
from mmdet.models.task_modules.assigners import AssignResult, HungarianAssigner
from mmengine import ConfigDict
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from .registry import TASK_UTILS


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
    k, m = cost.shape if cost.dim() == 2 else (-1, -1)
    if cost.dim() != 2 or gt_labels.shape != (m, ) or query_stuff_classes.shape != (k, ):
        raise ValueError(f'cost must be K x M, gt_labels M and query_stuff_classes K, got '
                         f'{tuple(cost.shape)}, {tuple(gt_labels.shape)}, '
                         f'{tuple(query_stuff_classes.shape)}')
    device = gt_labels.device
    qsc = query_stuff_classes.to(device=device, dtype=torch.long)
    stuff_q = torch.nonzero(qsc >= 0, as_tuple=False).squeeze(1)
    if torch.unique(qsc[stuff_q]).numel() != stuff_q.numel():
        raise ValueError('query_stuff_classes names a stuff class more than once')
    labels = gt_labels.to(device=device, dtype=torch.long)
    if num_things_classes is not None:
        gt_is_stuff = labels >= num_things_classes
    else:
        gt_is_stuff = torch.isin(labels, qsc[stuff_q])

    gt_inds = torch.zeros(k, dtype=torch.long, device=device)
    assigned_labels = torch.full((k, ), -1, dtype=torch.long, device=device)
    cost_cpu = cost.detach().float().cpu()

    # stuff: by class
    class_to_query = {int(c): int(q) for q, c in zip(stuff_q.tolist(), qsc[stuff_q].tolist())}
    best = {}
    for g in torch.nonzero(gt_is_stuff, as_tuple=False).squeeze(1).tolist():
        q = class_to_query.get(int(labels[g]))
        if q is None:
            continue
        if q not in best or cost_cpu[q, g] < cost_cpu[q, best[q]]:
            best[q] = g
    for q, g in best.items():
        gt_inds[q] = g + 1
        assigned_labels[q] = labels[g]

    # things: Hungarian over thing queries x thing segments
    thing_q = torch.nonzero(qsc < 0, as_tuple=False).squeeze(1)
    thing_g = torch.nonzero(~gt_is_stuff, as_tuple=False).squeeze(1)
    if thing_q.numel() and thing_g.numel():
        sub = cost_cpu[thing_q.cpu()][:, thing_g.cpu()]
        rows, cols = linear_sum_assignment(sub.numpy())
        rows = thing_q[torch.as_tensor(rows, dtype=torch.long, device=device)]
        cols = thing_g[torch.as_tensor(cols, dtype=torch.long, device=device)]
        gt_inds[rows] = cols + 1
        assigned_labels[rows] = labels[cols]
    return AssignResult(num_gts=m, gt_inds=gt_inds, max_overlaps=None, labels=assigned_labels)


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
        cost = torch.stack([
            c(pred_instances=pred_instances, gt_instances=gt_instances, img_meta=img_meta)
            for c in self.match_costs
        ]).sum(dim=0)
        return fixed_stuff_assignment(cost, gt_instances.labels, query_stuff_classes,
                                      self.num_things_classes)


__all__ = ['fixed_stuff_assignment', 'FixedStuffHungarianAssigner']
