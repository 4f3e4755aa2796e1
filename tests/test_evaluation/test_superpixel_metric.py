"""SuperpixelMetric: process/compute on fake samples, registry build, ignore handling."""
import numpy as np
import pytest
import torch

from clustseg.evaluation import SuperpixelMetric
from clustseg.evaluation.functional import evaluate_superpixels
from clustseg.registry import METRICS


def _sample(pred, gts):
    return dict(pred_superpixels=dict(data=torch.as_tensor(pred)[None]),
                gt_seg_maps=dict(data=torch.as_tensor(np.stack(gts))))


def _fake_pair():
    perfect = np.repeat(np.repeat(np.arange(4).reshape(2, 2), 5, 0), 5, 1)  # 10x10, 4 squares
    gt_a = perfect.copy()
    gt_b = np.zeros((10, 10), dtype=np.int64)
    gt_b[:, 5:] = 1
    coarse = np.zeros((10, 10), dtype=np.int64)  # columns 0-6 and 7-9
    coarse[:, 7:] = 1
    return [(perfect, [gt_a, gt_b]), (coarse, [gt_a])]


def test_process_and_compute_two_samples():
    metric = METRICS.build(dict(type='SuperpixelMetric'))
    assert isinstance(metric, SuperpixelMetric) and metric.prefix == 'superpixel'
    pairs = _fake_pair()
    metric.process({}, [_sample(p, g) for p, g in pairs])
    assert len(metric.results) == 2
    out = metric.compute_metrics(metric.results)
    assert set(out) == {'ASA', 'UE', 'BR', 'BP', 'CO', 'num_superpixels'}
    expect = [evaluate_superpixels(p, np.stack(g)) for p, g in pairs]
    for k in out:
        assert out[k] == pytest.approx((expect[0][k] + expect[1][k]) / 2)
    assert out['num_superpixels'] == pytest.approx(3.0)  # 4 and 2
    # first image: perfect vs gt_a, coarser gt_b fully recalled -> ASA 1, BR 1, BP < 1
    assert expect[0]['ASA'] == 1.0 and expect[0]['BR'] == 1.0 and expect[0]['BP'] < 1.0
    # second image vs 4 quadrants: cols 0-6 best overlap 25 px, cols 7-9 best 15 px
    assert expect[1]['ASA'] == pytest.approx(0.4)


def test_evaluate_loop_prefix_and_ignore():
    metric = SuperpixelMetric(ignore_index=-1)
    pairs = _fake_pair()
    metric.process({}, [_sample(p, g) for p, g in pairs])
    res = metric.evaluate(size=2)
    assert set(res) == {f'superpixel/{k}' for k in
                        ('ASA', 'UE', 'BR', 'BP', 'CO', 'num_superpixels')}
    # ignored GT pixels are excluded: padding the GT of a wrong prediction with -1 over the
    # mistake makes it perfect
    pred = np.zeros((4, 4), dtype=np.int64)
    gt = np.zeros((4, 4), dtype=np.int64)
    gt[:, 2:] = 1
    gt_pad = gt.copy()
    gt_pad[:, 2:] = -1
    m2 = SuperpixelMetric()
    m2.process({}, [_sample(pred, [gt_pad])])
    assert m2.results[0]['ASA'] == 1.0 and m2.results[0]['BR'] == 1.0
    m3 = SuperpixelMetric(ignore_index=None)
    m3.process({}, [_sample(pred, [gt_pad])])
    assert m3.results[0]['ASA'] == 0.5


def test_bad_samples_raise():
    metric = SuperpixelMetric()
    with pytest.raises(ValueError, match='gt_seg_maps'):
        metric.process({}, [dict(pred_superpixels=dict(data=torch.zeros(1, 4, 4).long()))])
    with pytest.raises(ValueError, match='gt_seg_maps'):
        metric.process({}, [_sample(np.zeros((4, 4), np.int64), [np.zeros((4, 5), np.int64)])])
    with pytest.raises(ValueError, match='r must'):
        SuperpixelMetric(r=-2)
