"""Superpixel benchmark metric (ASA, UE, BR, BP, CO, count) for mmengine evaluation loops."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from clustseg.registry import METRICS
from ..functional.superpixel import as_label_map, evaluate_superpixels

_KEYS = ('ASA', 'UE', 'BR', 'BP', 'CO', 'num_superpixels')


@METRICS.register_module()
class SuperpixelMetric(BaseMetric):
    """Superpixel quality against all annotators of each image.

    Per image, :func:`~clustseg.evaluation.functional.evaluate_superpixels` compares the
    prediction with every annotator and averages ASA / UE / BR / BP over annotators; CO and the
    superpixel count come from the prediction alone. :meth:`compute_metrics` returns the mean of
    every measure over images.

    Ignored pixels: pixels where an annotator map equals ``ignore_index`` (default -1, the
    repository's pad value) are removed from *that annotator's* ASA / UE / BR / BP: they count
    neither in ``N`` nor in any intersection or superpixel size, and they are never boundary
    pixels (a label change next to an ignored pixel is no boundary, for the prediction either).
    Annotators whose map is entirely ignored are skipped; an image with no valid annotator pixel
    raises ``ValueError``.

    Args:
        r (int, optional): boundary tolerance in pixels (Chebyshev distance). None (default):
            ``round(0.0025 * image diagonal)`` per image, 1 px on BSDS500.
        ignore_index (int, optional): GT value to ignore; None keeps every pixel.
        collect_device (str): see :class:`mmengine.evaluator.BaseMetric`.
        prefix (str, optional): key prefix, ``'superpixel'`` by default.
    """

    default_prefix: Optional[str] = 'superpixel'

    def __init__(self,
                 r: Optional[int] = None,
                 ignore_index: Optional[int] = -1,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, **kwargs)
        if r is not None and (isinstance(r, bool) or not isinstance(r, int) or r < 0):
            raise ValueError(f'r must be a non-negative int or None, got {r!r}')
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, int)):
            raise ValueError(f'ignore_index must be an int or None, got {ignore_index!r}')
        self.r = r
        self.ignore_index = ignore_index

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Evaluate each sample and store its measures.

        Each sample dict needs ``pred_superpixels['data']`` (``1 x H x W``) and
        ``gt_seg_maps['data']`` (``A x H x W``), tensors or arrays of integer labels.
        """
        for k, sample in enumerate(data_samples):
            for key in ('pred_superpixels', 'gt_seg_maps'):
                if key not in sample or 'data' not in sample[key]:
                    raise ValueError(f"data_samples[{k}] has no '{key}' with a 'data' field "
                                     f'(keys: {sorted(sample)})')
            pred = as_label_map(sample['pred_superpixels']['data'],
                                f"pred_superpixels['data'] (data_samples[{k}])", squeeze=True)
            gts = as_label_map(sample['gt_seg_maps']['data'],
                               f"gt_seg_maps['data'] (data_samples[{k}])", ndim=None)
            if gts.ndim == 2:
                gts = gts[None]
            if gts.ndim != 3 or gts.shape[1:] != pred.shape:
                raise ValueError(f"gt_seg_maps['data'] must be A x H x W with H x W = "
                                 f'{pred.shape} of pred_superpixels, got shape {gts.shape} '
                                 f'(data_samples[{k}])')
            res = evaluate_superpixels(pred, gts, r=self.r, ignore_index=self.ignore_index)
            res['num_annotators'] = int(gts.shape[0])
            self.results.append(res)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Mean of each measure over images; also logs a one-row table.

        If the dataset skipped bad samples (``skip_bad=True``: ``dataset_meta['skipped']``,
        a list of ``(path, reason)``), their number is reported as ``num_skipped`` and in the
        table, and the skipped files are listed in the log.
        """
        if not results:
            raise ValueError('results is empty: no sample was processed')
        metrics = {k: float(np.mean([res[k] for res in results])) for k in _KEYS}
        skipped = (self.dataset_meta or {}).get('skipped')
        cols = [('images', f'{len(results):>15d}')]
        if skipped is not None:
            metrics['num_skipped'] = len(skipped)
            cols.append(('skipped', f'{len(skipped):>15d}'))
        cols += [(k, f'{metrics[k]:>15.4f}' if k != 'num_superpixels' else
                  f'{metrics[k]:>15.1f}') for k in _KEYS]
        logger = MMLogger.get_current_instance()
        header = ' | '.join(f'{k:>15}' for k, _ in cols)
        row = ' | '.join(v for _, v in cols)
        msg = 'Superpixel evaluation (means over images):\n' + header + '\n' + row
        if skipped:
            msg += f'\n{len(skipped)} bad input(s) skipped, not in the means:' + ''.join(
                f'\n  {path}: {reason}' for path, reason in skipped)
        print_log(msg, logger=logger)
        return metrics
