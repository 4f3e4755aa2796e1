from .coco_metrics import ClustSegCocoMetric, ClustSegCocoPanopticMetric
from .iou_metric import ClustSegIoUMetric
from .panoptic_semseg_metric import PanopticSemSegMetric
from .superpixel_metric import SuperpixelMetric

__all__ = ['SuperpixelMetric', 'ClustSegCocoMetric', 'ClustSegCocoPanopticMetric',
           'ClustSegIoUMetric', 'PanopticSemSegMetric']
