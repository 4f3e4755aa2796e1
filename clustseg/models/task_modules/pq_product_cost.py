"""kMaX-DeepLab's matching cost ``-(class probability x mask dice similarity)``.

mmdet's ``HungarianAssigner`` *sums* its registered costs, so a product cannot be written as a
combination of ``ClassificationCost`` and ``DiceCost``; :class:`PQProductCost` is that product
as one registered cost. Definition (deeplab2 ``max_deeplab_loss.py`` / kMaX-DeepLab PyTorch port
``matcher.py``): for query ``k`` and ground-truth segment ``m``

- class similarity ``q_k(c_m)``: the softmax class probability of the GT class, with the void
  column dropped from the returned probabilities (not from the normalisation);
- mask similarity ``<p_k, g_m> / ((|p_k| + |g_m|) / 2 + 1e-5)`` with ``p = softmax`` of the mask
  logits *over the K queries*, zeroed on pixels that no GT segment covers (void);
- cost ``-(q_k(c_m) x sim_km)``, in ``[-1, 0]``.

It maximises the PQ-style objective's own product, so the matched pairs are those that the
PQ-style loss then trains (:func:`clustseg.models.losses.pq_style_loss`).
"""
from typing import Optional, Tuple

import torch
from mmdet.models.task_modules.assigners.match_cost import BaseMatchCost
from mmengine.structures import InstanceData
from torch import Tensor

from .registry import TASK_UTILS


def pq_similarities(cls_logits: Tensor,
                    mask_logits: Tensor,
                    gt_labels: Tensor,
                    gt_masks: Tensor,
                    *,
                    class_act: str = 'softmax',
                    mask_void_masking: bool = True,
                    eps: float = 1e-5) -> Tuple[Tensor, Tensor]:
    """Class and mask similarity matrices of every (query, GT) pair, without gradient.

    Args:
        cls_logits: ``K x (C + 1)`` (softmax, last column void) or ``K x C`` (sigmoid) logits;
            or ``S x K x ...``: S predictions (e.g. the E-steps of one image) at once.
        mask_logits: ``K x H x W`` (or ``K x HW``) mask logits; ``S x K x ...`` with S.
        gt_labels: ``M`` int64 classes in ``[0, C)``.
        gt_masks: ``M x H x W`` (or ``M x HW``) binary masks.
        class_act: ``'softmax'`` (kMaX) or ``'sigmoid'`` (a BCE class head).
        mask_void_masking: zero the predicted masks on pixels no GT covers (kMaX default).
        eps: denominator epsilon of the dice similarity (deeplab2: 1e-5).

    Returns:
        ``(class_sim, mask_sim)``, both fp32 ``K x M`` (``S x K x M``).
    """
    if class_act not in ('softmax', 'sigmoid'):
        raise ValueError(f"class_act must be 'softmax' or 'sigmoid', got {class_act!r}")
    lead = tuple(cls_logits.shape[:-1])  # K, or S x K
    if cls_logits.dim() not in (2, 3) or tuple(mask_logits.shape[:len(lead)]) != lead:
        raise ValueError(f'cls_logits must be [S x] K x C and mask_logits [S x] K x ... with the '
                         f'same leading sizes, got {tuple(cls_logits.shape)} and '
                         f'{tuple(mask_logits.shape)}')
    with torch.no_grad(), torch.autocast(device_type=mask_logits.device.type, enabled=False):
        x = mask_logits.float().reshape(lead + (-1, ))  # [S x] K x HW
        g = gt_masks.float().reshape(gt_masks.shape[0], -1).to(x.device)  # M x HW
        if g.shape[1] != x.shape[-1]:
            raise ValueError(f'gt_masks ({tuple(gt_masks.shape)}) and mask_logits '
                             f'({tuple(mask_logits.shape)}) must have the same pixels')
        if class_act == 'softmax':
            probs = cls_logits.float().softmax(dim=-1)[..., :-1]
        else:
            probs = cls_logits.float().sigmoid()
        labels = gt_labels.to(device=probs.device, dtype=torch.long)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= probs.shape[-1]):
            raise ValueError(f'gt_labels must lie in [0, {probs.shape[-1]})')
        class_sim = probs[..., labels]  # [S x] K x M
        p = x.softmax(dim=-2)  # over K
        if mask_void_masking:
            p = p * (g.sum(dim=0) > 0).float()
        inter = p @ g.t()  # [S x] K x M
        denom = (p.sum(dim=-1, keepdim=True) + g.sum(dim=1)) / 2.0
        mask_sim = inter / (denom + eps)
    return class_sim, mask_sim


@TASK_UTILS.register_module()
class PQProductCost(BaseMatchCost):
    """Match cost ``-weight x class_sim x mask_sim`` (kMaX-DeepLab's Hungarian weights).

    Reads ``pred_instances.scores`` (softmax class logits, ``K x (C + 1)``, last column void)
    and ``pred_instances.masks`` (mask logits ``K x H x W``), ``gt_instances.labels`` and
    ``gt_instances.masks`` (same ``H x W``). The masks are normalised over all rows of
    ``pred_instances`` (a softmax over the queries), so pass *all* K queries (as
    :class:`FixedStuffHungarianAssigner` does), not a subset. Use it alone in a
    ``HungarianAssigner`` (summing it with other costs is allowed but no longer kMaX's rule).

    The similarities are :func:`pq_similarities` with its defaults (kMaX's softmax classes,
    masks zeroed where no GT covers them, dice epsilon 1e-5).

    Args:
        weight: cost weight (1.0; scaling does not change the assignment).
    """

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__(weight=weight)

    def __call__(self,
                 pred_instances: InstanceData,
                 gt_instances: InstanceData,
                 img_meta: Optional[dict] = None,
                 **kwargs) -> Tensor:
        """Return the ``K x M`` fp32 cost matrix (``S x K x M`` for S predictions at once:
        scores ``S x K x C'``, masks ``S x K x ...``)."""
        class_sim, mask_sim = pq_similarities(
            pred_instances.scores, pred_instances.masks, gt_instances.labels,
            gt_instances.masks)
        return -self.weight * class_sim * mask_sim

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(weight={self.weight})'


__all__ = ['pq_similarities', 'PQProductCost']
