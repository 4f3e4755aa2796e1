"""mmdet's COCO metrics, correct and counted when the dataset skipped bad samples.

With ``skip_bad=True`` the dataset lists what it dropped in ``metainfo['skipped']`` (the
metric's ``dataset_meta``). mmdet's metrics read the ground truth from ``ann_file`` and do
not know about that:

- ``CocoMetric`` evaluates every image id of ``ann_file``, so a skipped image would count as
  an image with no detections (a silently lower AP). :class:`ClustSegCocoMetric` evaluates
  the images that were processed.
- ``CocoPanopticMetric`` accumulates PQ over the processed images only (the default, no
  ``outfile_prefix``), but with ``outfile_prefix`` it matches every image of ``ann_file`` and
  fails with "no prediction for the image". :class:`ClustSegCocoPanopticMetric` restricts
  that matching to the processed images.

Both add ``num_skipped`` to the metrics (when the dataset has ``skip_bad=True``) and log the
skipped files; without skipped samples they return exactly mmdet's numbers.
"""
import logging
from collections import defaultdict
from typing import Dict, Optional

from mmdet.evaluation.metrics import CocoMetric, CocoPanopticMetric
from mmengine.logging import print_log

from clustseg.registry import METRICS


def add_skipped_count(metric, metrics: Dict[str, float]) -> Dict[str, float]:
    """Add ``num_skipped`` (from ``dataset_meta['skipped']``) to ``metrics`` and log them."""
    skipped = (metric.dataset_meta or {}).get('skipped')
    if skipped is None:  # the dataset does not skip (skip_bad=False)
        return metrics
    metrics['num_skipped'] = len(skipped)
    msg = f'{type(metric).__name__}: {len(skipped)} bad input(s) skipped'
    if skipped:
        msg += ', not in the metrics:' + ''.join(f'\n  {p}: {r}' for p, r in skipped)
    print_log(msg, logger='current', level=logging.WARNING if skipped else logging.INFO)
    return metrics


def _has_skipped(metric) -> bool:
    return bool((metric.dataset_meta or {}).get('skipped'))


@METRICS.register_module()
class ClustSegCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` over the processed images when samples were skipped, plus
    ``num_skipped`` (see the module docstring). Same arguments as ``CocoMetric``."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        saved: Optional[list] = self.img_ids
        if _has_skipped(self) and results:
            self.img_ids = sorted({gt['img_id'] for gt, _ in results})
        try:
            metrics = super().compute_metrics(results)
        finally:
            self.img_ids = saved
        return add_skipped_count(self, metrics)


@METRICS.register_module()
class ClustSegCocoPanopticMetric(CocoPanopticMetric):
    """mmdet's ``CocoPanopticMetric`` that also works with ``outfile_prefix`` when samples
    were skipped, plus ``num_skipped`` (see the module docstring). Same arguments."""

    def compute_metrics(self, results: list) -> Dict[str, float]:
        api = self._coco_api
        if not (_has_skipped(self) and self.tmp_dir is None and api is not None and results):
            return add_skipped_count(self, super().compute_metrics(results))
        seen = {gt['image_id'] for gt, _ in results}
        full = api.img_ann_map
        api.img_ann_map = defaultdict(list, {k: v for k, v in full.items() if k in seen})
        try:
            metrics = super().compute_metrics(results)
        finally:
            api.img_ann_map = full
        return add_skipped_count(self, metrics)
