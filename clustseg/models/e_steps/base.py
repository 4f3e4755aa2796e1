"""The E-step variant interface: how a map of logits becomes the assignment the M-step uses."""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor

from clustseg.registry import MODELS


class EStepVariant(BaseModule):
    """Base class of the E-step variants of :class:`RecurrentCrossAttention` (paper Table 4c).

    A variant is a registered module, built from config (``variant='recurrent'`` or
    ``variant=dict(type='SoftmaxOverClusters')``). It declares what it supports, and the decoder,
    the heads and the superpixel segmentor read these class attributes instead of comparing
    names:

    * ``supports_local``: it has a form on the local 9-candidate layout of
      :class:`~clustseg.models.layers.local_em.LocalGrid` (superpixels);
    * ``needs_prob_loss``: its assignment passes no gradient to the Q / K projections, so a loss
      on the E-step probabilities (the softmax over clusters, which every variant's E-step
      provides for supervision) must be on for them to train;
    * ``mass_normalised``: the M-step divides by the assignment mass
      (False when the assignment already sums to 1 over the pixels);
    * ``one_hot``: its assignment is one-hot in the forward pass, so a cluster's mass is a
      pixel count and :meth:`m_step_mass` floors it at one pixel.

    :meth:`assign` receives the logits in the layout of the caller: ``B x h x N x K`` in the
    dense form (clusters on ``cluster_dim = -1``, pixels on ``pixel_dim = -2``) and
    ``B x K x h x 9 x P`` in the local one (the 9 candidate clusters on ``cluster_dim = 3``,
    ``pixel_dim = None``). ``pad`` (bool, True = padding, or None) broadcasts against them;
    ``probs`` is the softmax over clusters, zero on padding. It runs inside the caller's fp32
    island and returns a tensor shaped as ``logits``, zero on padding.
    """

    supports_local = False
    needs_prob_loss = False
    mass_normalised = True
    one_hot = False

    def assign(self, logits: Tensor, probs: Tensor, pad: Optional[Tensor], cluster_dim: int,
               pixel_dim: Optional[int] = None) -> Tensor:
        raise NotImplementedError(f'{type(self).__name__} must implement assign()')

    def m_step_mass(self, mass: Tensor, eps: float) -> Tensor:
        """The denominator of the mean M-step for a cluster's assignment mass ``mass`` (its sum
        over the pixels): ``mass + eps`` for soft assignments. A one-hot assignment gives an
        empty cluster a mass of exactly 0; with ``+ eps`` a straight-through gradient (whose
        forward value is 0 there) would reach its pixels scaled by ``1 / eps``, about 1e6 per
        empty cluster, and swamp every other gradient. So a one-hot mass, a pixel count, is
        floored at one pixel: the same value for every non-empty cluster, the center 0 for an
        empty one, and a gradient of the scale of the values."""
        return mass.clamp_min(1.0) if self.one_hot else mass + eps

    @staticmethod
    def one_hot_argmax(logits: Tensor, pad: Optional[Tensor], dim: int) -> Tensor:
        """One-hot of the argmax over ``dim`` (no gradient), zero on padding."""
        idx = logits.detach().argmax(dim=dim, keepdim=True)
        out = torch.zeros_like(logits).scatter_(dim, idx, 1.0)
        return out if pad is None else out.masked_fill(pad, 0.0)


def build_variant(variant) -> EStepVariant:
    """A registered name, a ``dict(type=...)`` or an instance -> the variant module. Anything
    else (an unknown name, a registered class that is no :class:`EStepVariant`) is a
    ``ValueError`` listing the registered variants."""
    return MODELS.build_of(EStepVariant, variant, 'variant', 'E-step variant')
