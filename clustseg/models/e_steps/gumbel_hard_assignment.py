"""The paper's k-means cross-attention of Table 4c: straight-through Gumbel-softmax."""
import torch

from clustseg.registry import MODELS
from ..utils.step_random import StepRandom
from .base import EStepVariant


@MODELS.register_module(name=['gumbel', 'GumbelHardAssignment'])
class GumbelHardAssignment(EStepVariant):
    """In training the one-hot argmax over the clusters of Gumbel-perturbed logits, with the
    gradient of their softmax (straight-through Gumbel-softmax, temperature 1); at test the plain
    argmax. The noise is drawn from checkpointed state (:class:`StepRandom`), so a resumed run
    draws the same noise."""

    one_hot = True

    def __init__(self, init_cfg=None):
        super().__init__(init_cfg)
        self.rng = StepRandom(per_rank=True)

    def assign(self, logits, probs, pad, cluster_dim, pixel_dim=None):
        if pixel_dim is None:
            raise ValueError('the Gumbel E-step has no local form')
        if self.training:
            seed = int(torch.randint(2**62, (1, ), generator=self.rng.generator()))
            g = torch.Generator(device=logits.device)
            g.manual_seed(seed)
            u = torch.rand(logits.shape, generator=g, device=logits.device)
            logits = logits - torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
        out = self.one_hot_argmax(logits, None, cluster_dim)
        if self.training:
            soft = logits.softmax(dim=cluster_dim)
            out = out + (soft - soft.detach())  # exactly one-hot forward
        return out if pad is None else out.masked_fill(pad, 0.0)
