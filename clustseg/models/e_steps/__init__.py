from .base import EStepVariant, build_variant
from .gumbel_hard_assignment import GumbelHardAssignment
from .hard_argmax import HardArgmax
from .softmax_over_clusters import SoftmaxOverClusters
from .softmax_over_pixels import SoftmaxOverPixels

__all__ = ['EStepVariant', 'build_variant', 'GumbelHardAssignment',
           'HardArgmax', 'SoftmaxOverClusters', 'SoftmaxOverPixels']
