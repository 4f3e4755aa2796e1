"""Registered wrapper of the superpixel colour-reconstruction loss."""
from typing import Optional

from torch import Tensor, nn

from clustseg.registry import MODELS
from .superpixel_losses import reconstruction_loss


@MODELS.register_module()
class SuperpixelReconstructionLoss(nn.Module):
    """Smooth-L1 between a per-pixel target and its reconstruction through the superpixels.

    The target is normally :func:`~clustseg.models.losses.superpixel_losses.lab_target` of
    the raw image (Lab scaled by 1/100, 1/110, 1/110), which makes superpixels
    colour-homogeneous.

    Args:
        loss_weight: multiplies the loss.
        beta: smooth-L1 transition point.
    """

    def __init__(self, loss_weight: float = 10.0, beta: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.beta = beta

    def forward(self, assign: Tensor, img_lab_target: Tensor,
                valid: Optional[Tensor] = None) -> Tensor:
        """
        Args:
            assign: ``B x K x N`` soft assignment, ``N = H * W`` (row-major), or a
                ``LocalAssignment`` (``probs`` B x K x 9 x P, no ``K x N`` map built).
            img_lab_target: ``B x C x H x W`` target (e.g. scaled Lab image).
            valid: optional ``B x H x W`` or ``B x N`` boolean mask.

        Returns:
            fp32 scalar ``loss_weight * smooth_l1``.
        """
        if img_lab_target.dim() != 4:
            raise ValueError('img_lab_target must be B x C x H x W, got shape '
                             f'{tuple(img_lab_target.shape)}')
        target = img_lab_target.flatten(2).transpose(1, 2)  # B x N x C
        return self.loss_weight * reconstruction_loss(
            assign, target, valid=valid, beta=self.beta)

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}, beta={self.beta}'
