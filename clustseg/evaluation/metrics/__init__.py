from .coco_metrics import ClustSegCocoMetric, ClustSegCocoPanopticMetric
from .panoptic_semseg_metric import PanopticSemSegMetric
from .superpixel_metric import SuperpixelMetric

__all__ = ['SuperpixelMetric', 'ClustSegCocoMetric', 'ClustSegCocoPanopticMetric',
           'PanopticSemSegMetric']
