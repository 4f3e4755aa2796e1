from .coco_metrics import ClustSegCocoMetric, ClustSegCocoPanopticMetric
from .superpixel_metric import SuperpixelMetric

__all__ = ['SuperpixelMetric', 'ClustSegCocoMetric', 'ClustSegCocoPanopticMetric']
