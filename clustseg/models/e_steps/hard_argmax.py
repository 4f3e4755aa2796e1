"""kMaX-DeepLab's k-means cross-attention: a hard argmax over the clusters."""
from clustseg.registry import MODELS
from .base import EStepVariant


@MODELS.register_module(name=['kmeans', 'HardArgmax'])
class HardArgmax(EStepVariant):
    """``M = one_hot(argmax_K(logits))``. No gradient flows through it, so the Q / K
    projections train only through a loss on the E-step probabilities (``needs_prob_loss``),
    as in kMaX-DeepLab, whose hard assignments come from logits a mask loss supervises."""

    supports_local = True
    needs_prob_loss = True
    one_hot = True

    def assign(self, logits, probs, pad, cluster_dim, pixel_dim=None):
        return self.one_hot_argmax(logits, pad, cluster_dim)
