"""The evaluation wiring of the semantic configs: ground truth fed back as the prediction scores
mIoU = aAcc = 100 with mmseg's IoUMetric, on the real COCO-Stuff and ADE20K samples of
tests/data, through the configs' own datasets and evaluators; a corrupted prediction scores less."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData

from clustseg.registry import DATASETS, METRICS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CONFIGS = {'coco_stuff': 'clustseg_compact_embedded.py',
           'ade20k': 'clustseg_compact_embedded_ade20k.py'}


def _evaluate(name, corrupt=False):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'semantic' / CONFIGS[name]))
    pipeline = [t for t in cfg.val_dataloader.dataset.pipeline if t['type'] != 'Resize']
    cfg.val_dataloader.dataset.pipeline = pipeline  # original size: GT = prediction exactly
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(cfg.val_dataloader.dataset)
        metric = METRICS.build(cfg.val_evaluator)
        metric.dataset_meta = ds.metainfo
        outputs = []
        for i in range(len(ds)):
            sample = ds[i]['data_samples']
            pred = sample.gt_sem_seg.data.clone()
            if corrupt:  # one labelled class of the image relabelled as another class
                labelled = pred[pred != 255]
                pred[pred == labelled[0]] = (labelled[0] + 1) % len(ds.metainfo['classes'])
            sample.pred_sem_seg = PixelData(data=pred)
            outputs.append(sample.to_dict())
        metric.process({}, outputs)
        return len(ds), ds.metainfo, metric.compute_metrics(metric.results)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_ground_truth_scores_miou_100(name):
    n, meta, res = _evaluate(name)
    assert n == {'coco_stuff': 8, 'ade20k': 3}[name]
    assert len(meta['classes']) == {'coco_stuff': 171, 'ade20k': 150}[name]
    assert res['mIoU'] == pytest.approx(100.0) and res['aAcc'] == pytest.approx(100.0)


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_a_wrong_class_scores_less(name):
    _, _, res = _evaluate(name, corrupt=True)
    assert res['mIoU'] < 100.0 and res['aAcc'] < 100.0
