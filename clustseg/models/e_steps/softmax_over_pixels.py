"""Standard cross-attention as an E-step (Eq. 5): the softmax over the pixels."""
from clustseg.registry import MODELS
from .base import EStepVariant


@MODELS.register_module(name=['vanilla', 'SoftmaxOverPixels'])
class SoftmaxOverPixels(EStepVariant):
    """``M = softmax_N(logits)`` with padding excluded (the "vanilla" row of Table 4c). Its rows
    already sum to 1 over the pixels, so the M-step does not divide by the mass. No local form:
    a pixel-axis softmax needs every pixel of the map."""

    mass_normalised = False

    def assign(self, logits, probs, pad, cluster_dim, pixel_dim=None):
        if pixel_dim is None:
            raise ValueError('the vanilla E-step (softmax over pixels) has no local form')
        masked = logits if pad is None else logits.masked_fill(pad, float('-inf'))
        return masked.softmax(dim=pixel_dim)
