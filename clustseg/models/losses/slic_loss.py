"""Registered wrapper of the SSFCN SLIC loss (dense or local assignments)."""
from typing import Dict, Optional, Union

from torch import Tensor, nn

from clustseg.registry import MODELS
from ..layers.local_em import LocalAssignment
from .superpixel_losses import pixel_coords, slic_loss


@MODELS.register_module()
class SLICLoss(nn.Module):
    """SLIC loss (label cross-entropy + position term) on a soft assignment: dense
    ``B x K x N``, or a :class:`~clustseg.models.layers.local_em.LocalAssignment` (each pixel
    among its 9 neighbouring cells' centers; computed without any ``K x N`` map).

    See :func:`clustseg.models.losses.superpixel_losses.slic_loss` for the maths and the
    reasoning behind the defaults (``pos_weight=0.003`` with ``S = sqrt(N / K)`` pixels, ``N``
    all pixels of the map: the seeds' spacing, as in SSFCN).

    Args:
        loss_weight: multiplies both terms.
        pos_weight: ``m`` of the position term ``(m / S) * ||p_hat - p||_2``.
        label_weight: extra weight of the label (semantic) term.

    Labels of -1 (the superpixel datasets' padding) are left out, as by :func:`slic_loss`.

    Forward returns ``{'loss_slic_sem': loss_weight * label_weight * sem,
    'loss_slic_pos': loss_weight * pos}`` (fp32 scalars; mmengine sums ``loss*`` keys).
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 pos_weight: float = 0.003,
                 label_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.pos_weight = pos_weight
        self.label_weight = label_weight

    def forward(self,
                assign: Tensor,
                labels: Tensor,
                valid: Optional[Tensor] = None,
                S: Optional[Union[float, Tensor]] = None) -> Dict[str, Tensor]:
        """
        Args:
            assign: ``B x K x N`` soft assignment, ``N = H * W`` (row-major), or a
                ``LocalAssignment`` (``probs`` B x K x 9 x P) on an H x W grid.
            labels: ``B x H x W`` int64 region ids (-1 = ignored).
            valid: optional ``B x H x W`` or ``B x N`` boolean mask.
            S: grid interval in pixels (scalar or ``B``); None = ``sqrt(N / K)``, N all pixels.
        """
        if labels.dim() != 3:
            raise ValueError(f'labels must be B x H x W, got shape {tuple(labels.shape)}')
        h, w = labels.shape[-2:]
        device = assign.probs.device if isinstance(assign, LocalAssignment) else assign.device
        coords = pixel_coords(h, w, device=device)  # N x 2
        out = slic_loss(assign, labels, coords, valid=valid, m=self.pos_weight, S=S)
        return dict(
            loss_slic_sem=self.loss_weight * self.label_weight * out['sem'],
            loss_slic_pos=self.loss_weight * out['pos'])

    def extra_repr(self) -> str:
        return (f'loss_weight={self.loss_weight}, pos_weight={self.pos_weight}, '
                f'label_weight={self.label_weight}')
