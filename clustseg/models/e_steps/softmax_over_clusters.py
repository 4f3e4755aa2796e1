"""ClustSeg's E-step (Eq. 10): the softmax over the cluster axis."""
from clustseg.registry import MODELS
from .base import EStepVariant


@MODELS.register_module(name=['recurrent', 'SoftmaxOverClusters'])
class SoftmaxOverClusters(EStepVariant):
    """``M = softmax_K(logits)``: every pixel distributes one unit of mass over the clusters (the
    soft k-means E-step). The M-step averages with ``M`` itself, so the probabilities the losses
    supervise are the assignment. Registered as ``'recurrent'`` (the paper's name)."""

    supports_local = True

    def assign(self, logits, probs, pad, cluster_dim, pixel_dim=None):
        return probs
