"""The evaluation wiring of the panoptic and instance configs: ground truth fed back as the
prediction scores PQ = 100 (mmdet's CocoPanopticMetric), AP^Th_pan = 100 and mIoU_pan = 100 (the
panoptic config's other two evaluators) and mask AP = 100 (CocoMetric), on the real COCO
samples of tests/data, through the configs' own datasets and evaluators."""
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
    evs = cfg.val_evaluator if isinstance(cfg.val_evaluator, list) else [cfg.val_evaluator]
    metrics = [METRICS.build(e) for e in evs]
    for m in metrics:
        m.dataset_meta = ds.metainfo
    return ds, metrics if len(metrics) > 1 else metrics[0]


def test_panoptic_ground_truth_scores_pq_ap_th_and_miou_100():
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds, metrics = _dataset_and_metric('panoptic')
        assert [type(m).__name__ for m in metrics] == [
            'ClustSegCocoPanopticMetric', 'ClustSegCocoMetric', 'PanopticSemSegMetric']
        num_things = len(ds.metainfo['thing_classes'])
        outputs = []
        for i in range(len(ds)):
            sample = ds[i]['data_samples']
            sem = sample.gt_sem_seg.sem_seg[0].long()  # class ids, 255 = void
            pan = torch.full_like(sem, len(ds.metainfo['classes']))  # void
            stuff = (sem >= num_things) & (sem != 255)
            pan[stuff] = sem[stuff]
            gt = sample.gt_instances
            masks = gt.masks.to_tensor(torch.bool, 'cpu')
            for k, (label, mask) in enumerate(zip(gt.labels, masks)):
                pan[mask] = int(label) + (k + 1) * INSTANCE_OFFSET
            # crowd regions (not instances): one segment of their class each, as a model
            # would predict them (PQ ignores it, mIoU_pan counts the pixels)
            crowd = (sem < num_things) & (pan == len(ds.metainfo['classes']))
            pan[crowd] = sem[crowd] + (len(gt) + 1) * INSTANCE_OFFSET
            sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
            thing = gt.labels < num_things  # the panoptic model's instance output: things
            if 'gt_ignore_flags' in sample:  # crowd regions are not instances
                thing = thing & ~sample.gt_ignore_flags
            sample.pred_instances = InstanceData(
                masks=masks[thing], labels=gt.labels[thing], scores=torch.ones(int(thing.sum())),
                bboxes=gt.bboxes.tensor[thing] if hasattr(gt.bboxes, 'tensor') else
                gt.bboxes[thing])
            outputs.append(sample.to_dict())
        res = {}
        for m in metrics:
            m.process({}, outputs)
            res.update(m.compute_metrics(m.results))
    assert res['PQ'] == pytest.approx(100.0)
    assert res['PQ_th'] == pytest.approx(100.0) and res['PQ_st'] == pytest.approx(100.0)
    assert res['segm_mAP'] == pytest.approx(1.0)  # AP^Th_pan
    assert res['mIoU'] == pytest.approx(100.0)  # mIoU_pan


def test_panoptic_void_prediction_lowers_miou_pan():
    """Pixels no predicted segment claims count against their ground-truth class, also after
    the PQ metric, which comes first in the config and read the same prediction (mmdet's
    writes VOID = 0 into it in place, on a CPU into the very tensor: class 0 for the mIoU)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds, metrics = _dataset_and_metric('panoptic')
        pq_metric, metric = metrics[0], metrics[2]
        sample = ds[0]['data_samples']
        sem = sample.gt_sem_seg.sem_seg[0].long()
        pan = sem.clone()
        pan[sem == 255] = len(ds.metainfo['classes'])
        cls = int(sem[sem != 255][0])
        pan[sem == cls] = len(ds.metainfo['classes'])  # one class left unpredicted
        sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
        outputs = [sample.to_dict()]  # one dict for all metrics, as mmengine's Evaluator
        pq_metric.process({}, outputs)
        metric.process({}, outputs)
        res = metric.compute_metrics(metric.results)
    present = len(set(sem[sem != 255].tolist()))
    assert res['mIoU'] == pytest.approx(100.0 * (present - 1) / present, abs=0.01)
    assert res['mAcc'] == pytest.approx(100.0 * (present - 1) / present, abs=0.01)
    # aAcc: the pixel accuracy (mmseg's), not the mean of the per-class accuracies
    labelled = sem != 255
    hit = (labelled & (sem != cls)).sum() / labelled.sum()
    assert res['aAcc'] == pytest.approx(100.0 * float(hit), abs=0.01)
    assert abs(res['aAcc'] - res['mAcc']) > 1


def test_miou_pan_reads_the_dense_semantic_map_when_the_fusion_head_gives_one():
    """ClassScoreFusionHead(semantic_map=True) adds Mask2Former's dense semantic map to the
    panoptic output: the metric scores that map, not the panoptic ids' classes (here all
    void)."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds, metrics = _dataset_and_metric('panoptic')
        metric = metrics[2]
        sample = ds[0]['data_samples']
        sem = sample.gt_sem_seg.sem_seg[0].long()
        void = torch.full_like(sem, len(ds.metainfo['classes']))
        dense = sem.clone()
        dense[sem == 255] = 0
        sample.pred_panoptic_seg = PixelData(sem_seg=void[None], semantic=dense[None])
        metric.process({}, [sample.to_dict()])
        res = metric.compute_metrics(metric.results)
    assert res['mIoU'] == pytest.approx(100.0, abs=0.01)


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
