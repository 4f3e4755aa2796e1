"""mIoU of a panoptic model's output read as semantic segmentation (the paper's mIoU_pan)."""
from typing import Sequence

from mmdet.evaluation.metrics import SemSegMetric
from mmdet.evaluation.functional import INSTANCE_OFFSET

from clustseg.registry import METRICS


@METRICS.register_module()
class PanopticSemSegMetric(SemSegMetric):
    """mmdet's ``SemSegMetric`` on the semantic map of a panoptic model's output.

    The map is ``pred_panoptic_seg.semantic`` when the fusion head adds it
    (``ClassScoreFusionHead(semantic_map=True)``, the ClustSeg panoptic configs: Mask2Former's
    dense semantic inference, as its mIoU_pan in the paper's Table 1). Otherwise it is the
    class map of the panoptic ids: a panoptic id is ``label + instance * INSTANCE_OFFSET``
    with ``label = num_classes`` for pixels no segment claims; such void pixels count as
    misses of their ground-truth class (they enter the ground-truth area, not the
    intersection). Ground truth is the dataset's
    ``gt_sem_seg`` (class of every panoptic segment, 255 = unlabelled, ignored). Keys are
    prefixed ``panoptic_sem/`` (``mIoU``, ``aAcc``, ...) unless ``prefix`` says otherwise.

    ``aAcc`` is the pixel accuracy over all labelled pixels, as mmseg's ``IoUMetric`` (the
    semantic configs') computes it. mmdet 3.3's ``SemSegMetric`` averages its per-class
    accuracies instead, which is ``mAcc`` again (:meth:`get_return_metrics`).
    """
    default_prefix = 'panoptic_sem'

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        for ds in data_samples:
            if 'pred_panoptic_seg' not in ds:
                raise KeyError('PanopticSemSegMetric needs pred_panoptic_seg in the outputs '
                               '(model.test_cfg.panoptic_on=True)')
            if 'gt_sem_seg' not in ds:
                raise KeyError(f"PanopticSemSegMetric: no gt_sem_seg for {ds.get('img_path')} "
                               '(the test pipeline must load the panoptic annotations with '
                               'with_seg=True)')
            out = ds['pred_panoptic_seg']
            if 'semantic' in out:
                pred = out['semantic'].squeeze()
            else:
                pred = out['sem_seg'].squeeze() % INSTANCE_OFFSET  # class id; num_classes = void
            label = ds['gt_sem_seg']['sem_seg'].squeeze().to(pred)
            if pred.shape != label.shape:
                raise ValueError(f"PanopticSemSegMetric: prediction {tuple(pred.shape)} and "
                                 f"ground truth {tuple(label.shape)} differ for "
                                 f"{ds.get('img_path')}")
            self.results.append(self._compute_pred_stats(pred, label, num_classes, 255))

    def get_return_metrics(self, results: list) -> dict:
        """mmdet's per-class metrics, with ``aAcc`` the one pixel accuracy (labelled pixels
        predicted as their class, over all labelled pixels) instead of per-class values."""
        ret = super().get_return_metrics(results)
        intersect = sum(r['area_intersect'] for r in results).sum()
        labelled = sum(r['area_label'] for r in results).sum()
        ret['aAcc'] = (intersect / labelled).cpu().numpy()
        return ret


__all__ = ['PanopticSemSegMetric']
