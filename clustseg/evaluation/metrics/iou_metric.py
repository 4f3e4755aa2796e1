"""mmseg's ``IoUMetric`` that reports the samples its dataset skipped (``skip_bad``)."""
from typing import Dict

from mmseg.evaluation import IoUMetric

from clustseg.registry import METRICS
from .coco_metrics import add_skipped_count


@METRICS.register_module()
class ClustSegIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` (same arguments and numbers: it only ever sees the processed
    samples) plus ``num_skipped`` and a warning naming the skipped files when the dataset has
    ``skip_bad=True`` (see :func:`~clustseg.evaluation.metrics.coco_metrics.add_skipped_count`).
    """

    def compute_metrics(self, results: list) -> Dict[str, float]:
        return add_skipped_count(self, super().compute_metrics(results))
