"""mmdet's COCO metrics, correct and counted when the dataset skipped bad samples.

With ``skip_bad=True`` the dataset lists what it dropped in ``metainfo['skipped']`` (the
metric's ``dataset_meta``). mmdet's metrics read the ground truth from ``ann_file`` and do
not know about that:

- ``CocoMetric`` evaluates every image id of ``ann_file``, so a skipped image (or one the
  dataloader never reads, when it points at other data than the metric) would count as an
  image with no detections (a silently lower AP). :class:`ClustSegCocoMetric` evaluates the
  images that were processed, and refuses processed images that ``ann_file`` does not list.
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


def _ids_text(ids, limit: int = 8) -> str:
    ids = sorted(ids)
    text = ', '.join(str(i) for i in ids[:limit])
    return text if len(ids) <= limit else f'{text}, ... ({len(ids)} in all)'


@METRICS.register_module()
class ClustSegCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` over the images the dataloader processed, plus ``num_skipped``
    (see the module docstring). Same arguments as ``CocoMetric``.

    With an ``ann_file``, mmdet scores every image of that file, so images the dataloader
    never read count as images without detections: a silently lower AP when samples were
    skipped, or when the dataloader was pointed at other data or a subset while the metric's
    ``ann_file`` stayed (the panoptic configs' instance metric reads its own instance-format
    file). This metric follows the dataloader: it evaluates the processed images (logging
    how many of the file's images that is, when not all), and a processed image that the
    ``ann_file`` does not list is a ``ValueError`` naming the file and the config key, as soon
    as its batch is processed.
    """

    def __init__(self, *args, ann_file=None, **kwargs) -> None:
        super().__init__(*args, ann_file=ann_file, **kwargs)
        self.ann_file = ann_file

    def _where(self) -> str:
        prefix = f", prefix={self.prefix!r}" if self.prefix else ''
        return f'{type(self).__name__}(ann_file={self.ann_file!r}{prefix})'

    def process(self, data_batch, data_samples) -> None:
        if self._coco_api is not None:
            unknown = {s['img_id'] for s in data_samples} - set(self._coco_api.imgs)
            if unknown:
                raise ValueError(
                    f'{self._where()}: the dataloader gave image id(s) {_ids_text(unknown)}, '
                    f'which {self.ann_file} does not list: the metric would score the '
                    "wrong images. Point this evaluator's ann_file (test_evaluator / "
                    'val_evaluator) at the annotations of the images the dataloader reads')
        super().process(data_batch, data_samples)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        saved: Optional[list] = self.img_ids
        if self._coco_api is not None and results:
            listed = set(self.img_ids if self.img_ids is not None
                         else self._coco_api.get_img_ids())
            processed = {gt['img_id'] for gt, _ in results}
            if processed != listed:
                print_log(f'{self._where()}: evaluating the {len(processed)} image(s) the '
                          f'dataloader processed, of the {len(listed)} that the file lists',
                          logger='current', level=logging.WARNING)
                self.img_ids = sorted(processed)
        try:
            metrics = super().compute_metrics(results)
        finally:
            self.img_ids = saved
        return add_skipped_count(self, metrics)


@METRICS.register_module()
class ClustSegCocoPanopticMetric(CocoPanopticMetric):
    """mmdet's ``CocoPanopticMetric`` that also works with ``outfile_prefix`` when samples
    were skipped, plus ``num_skipped`` (see the module docstring), and leaves the prediction
    as it found it (:meth:`_parse_predictions`). Same arguments."""

    def _parse_predictions(self, pred: dict, img_id: int, segm_file: str,
                           label2cat=None) -> dict:
        """mmdet's, on a copy of the panoptic map: mmdet writes VOID (0) into the array of
        ``pred_panoptic_seg.sem_seg`` in place, and on a CPU that array is the prediction's
        own memory, so the metrics after this one (``PanopticSemSegMetric``, the config's
        mIoU_pan) read unclaimed pixels as class 0."""
        pan = dict(pred['pred_panoptic_seg'])
        pan['sem_seg'] = pan['sem_seg'].clone()
        return super()._parse_predictions(dict(pred, pred_panoptic_seg=pan), img_id, segm_file,
                                          label2cat)

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
