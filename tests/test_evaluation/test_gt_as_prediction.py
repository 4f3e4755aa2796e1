"""The evaluation wiring of the panoptic and instance configs: ground truth fed back as the
prediction scores PQ = 100 (mmdet's CocoPanopticMetric) and mask AP = 100 (CocoMetric), on the
real COCO samples of tests/data, through the configs' own datasets and evaluators."""
import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

from clustseg.registry import DATASETS, METRICS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]


def _dataset_and_metric(task):
    cfg = Config.fromfile(str(ROOT / 'configs' / task / 'clustseg_compact_embedded.py'))
    pipeline = [t for t in cfg.val_dataloader.dataset.pipeline if t['type'] != 'Resize']
    cfg.val_dataloader.dataset.pipeline = pipeline  # original size: GT = prediction exactly
    ds = DATASETS.build(cfg.val_dataloader.dataset)
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = ds.metainfo
    return ds, metric


def test_panoptic_ground_truth_scores_pq_100():
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds, metric = _dataset_and_metric('panoptic')
        num_things = len(ds.metainfo['thing_classes'])
        outputs = []
        for i in range(len(ds)):
            sample = ds[i]['data_samples']
            sem = sample.gt_sem_seg.sem_seg[0].long()  # class ids, 255 = void
            pan = torch.full_like(sem, len(ds.metainfo['classes']))  # void
            stuff = (sem >= num_things) & (sem != 255)
            pan[stuff] = sem[stuff]
            gt = sample.gt_instances
            for k, (label, mask) in enumerate(zip(gt.labels, gt.masks.to_tensor(torch.bool,
                                                                              'cpu'))):
                pan[mask] = int(label) + (k + 1) * INSTANCE_OFFSET
            sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
            outputs.append(sample.to_dict())
        metric.process({}, outputs)
        res = metric.compute_metrics(metric.results)
    assert res['PQ'] == pytest.approx(100.0)
    assert res['PQ_th'] == pytest.approx(100.0) and res['PQ_st'] == pytest.approx(100.0)


def test_instance_ground_truth_scores_ap_100():
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds, metric = _dataset_and_metric('instance')
        outputs = []
        for i in range(len(ds)):
            sample = ds[i]['data_samples']
            gt = sample.gt_instances
            keep = ~sample.gt_ignore_flags if 'gt_ignore_flags' in sample else \
                torch.ones(len(gt), dtype=torch.bool)
            masks = gt.masks.to_tensor(torch.bool, 'cpu')[keep]
            sample.pred_instances = InstanceData(
                masks=masks, labels=gt.labels[keep], bboxes=gt.bboxes.tensor[keep]
                if hasattr(gt.bboxes, 'tensor') else gt.bboxes[keep],
                scores=torch.ones(int(keep.sum())))
            outputs.append(sample.to_dict())
        metric.process({}, outputs)
        res = metric.compute_metrics(metric.results)
    assert res['segm_mAP'] == pytest.approx(1.0)
    assert np.isclose(res['segm_mAP_50'], 1.0) and np.isclose(res['segm_mAP_75'], 1.0)
