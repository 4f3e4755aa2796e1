"""Superpixel measures and metric: cases the other tests leave open (found by mutation
testing). Expected values are hand-computed on tiny maps or come from skimage itself."""
import math

import numpy as np
import pytest
import torch

from clustseg.evaluation import SuperpixelMetric
from clustseg.evaluation.functional import (boundary_precision, boundary_recall,
                                            evaluate_superpixels, grid_superpixels,
                                            slic_superpixels)


def _sample(pred, gts):
    return dict(pred_superpixels=dict(data=torch.as_tensor(pred)[None]),
                gt_seg_maps=dict(data=torch.as_tensor(np.stack(gts))))


def test_single_superpixel_has_precision_one_and_recall_zero():
    """No superpixel boundary: BP is 1.0 by the documented convention, BR is 0 (GT has one)."""
    sp = np.zeros((6, 8), np.int64)
    gt = np.zeros((6, 8), np.int64)
    gt[:, 4:] = 1
    assert boundary_precision(sp, gt, r=1) == 1.0
    assert boundary_recall(sp, gt, r=1) == 0.0
    res = evaluate_superpixels(sp, gt, r=1)
    assert res['BP'] == 1.0 and res['BR'] == 0.0 and res['num_superpixels'] == 1


def test_standalone_boundary_measures_mask_the_superpixel_boundary_too():
    """A superpixel label change next to an ignored GT pixel is no boundary, in
    boundary_recall / boundary_precision as in evaluate_superpixels (the metric's path).

    Row 0 of the GT is ignored; the superpixels change only in row 0 and between row 0 and
    row 1. With the valid mask every superpixel pair touching row 0 is dropped, so the
    superpixel map has no boundary among the valid pixels: BR = 0, BP = 1 (r = 1)."""
    gt = np.array([[-1, -1, -1, -1],
                   [1, 1, 2, 2],
                   [1, 1, 2, 2]])
    sp = np.array([[0, 0, 5, 5],
                   [0, 0, 0, 0],
                   [0, 0, 0, 0]])
    res = evaluate_superpixels(sp, gt, r=1)
    assert (res['BR'], res['BP']) == (0.0, 1.0)
    assert boundary_recall(sp, gt, r=1) == 0.0
    assert boundary_precision(sp, gt, r=1) == 1.0
    # and on random maps with an ignored band the two paths agree
    rng = np.random.default_rng(5)
    for _ in range(5):
        gt = np.kron(rng.integers(0, 3, (4, 5)), np.ones((3, 3), np.int64))
        gt[rng.integers(0, 12), :] = -1
        gt[:, rng.integers(0, 15)] = -1
        sp = np.kron(rng.integers(0, 4, (6, 8)), np.ones((2, 2), np.int64))[:12, :15]
        for r in (0, 1, 2):
            res = evaluate_superpixels(sp, gt, r=r)
            assert boundary_recall(sp, gt, r=r) == pytest.approx(res['BR'])
            assert boundary_precision(sp, gt, r=r) == pytest.approx(res['BP'])


def test_grid_cell_counts_round_to_nearest():
    """rows = round(h / s), cols = round(w / s), s = sqrt(h w / n): on BSDS500 portrait
    481 x 321 with n = 600, s = 16.042, h / s = 29.985 -> 30, w / s = 20.010 -> 20."""
    s = math.sqrt(481 * 321 / 600)
    assert round(481 / s) == 30 and round(321 / s) == 20  # the hand derivation
    g = grid_superpixels(481, 321, 600)
    assert g.max() + 1 == 600
    assert np.array_equal(g[0, :], np.arange(321) * 20 // 321)  # row-major, first row
    assert np.array_equal(g[:, 0], (np.arange(481) * 30 // 481) * 20)
    # 10 x 10 with 3 cells: s = 5.77, 10 / s = 1.73 -> 2 x 2 = 4 cells
    assert grid_superpixels(10, 10, 3).max() + 1 == 4


def test_slic_bgr_input_is_clustered_as_its_rgb_image():
    """channel_order='bgr' (default) must cluster the RGB image img[..., ::-1], i.e. give
    skimage's own slic on it (the reference), and not slic on the BGR array."""
    from skimage.segmentation import slic
    rng = np.random.default_rng(0)
    img = np.zeros((60, 90, 3), np.uint8)  # BGR: red right half, blue square on the left
    img[:, 45:] = (30, 30, 200)
    img[20:40, 10:30] = (200, 30, 30)
    img = np.clip(img + rng.integers(0, 40, img.shape), 0, 255).astype(np.uint8)
    kw = dict(n_segments=24, compactness=10.0, max_num_iter=10, sigma=0.0,
              enforce_connectivity=True, start_label=0, channel_axis=-1)
    ref = slic(np.ascontiguousarray(img[..., ::-1]), **kw)
    wrong = slic(img, **kw)
    assert not np.array_equal(ref, wrong)  # the test input tells the two apart
    ref_ids = np.unique(ref, return_inverse=True)[1].reshape(ref.shape)  # 0..n-1
    np.testing.assert_array_equal(slic_superpixels(img, 24), ref_ids)
    np.testing.assert_array_equal(slic_superpixels(img[..., ::-1], 24, channel_order='rgb'),
                                  slic_superpixels(img, 24))


def _pair(split_col):
    gt = np.zeros((10, 10), np.int64)
    gt[:, 5:] = 1
    sp = np.zeros((10, 10), np.int64)
    sp[:, split_col:] = 1
    return sp, gt


def test_metric_means_over_images_not_median():
    """The metric reports the mean over images. 10 x 10 images, GT split at column 5,
    predictions split at columns 5, 5 and 9. Hand: the split at 9 has S0 = columns 0-8
    (90 px: 50 in G0, 40 in G1) and S1 = column 9 (10 px in G1), so ASA = (50 + 10) / 100 =
    0.6; the others are exact (ASA 1). Mean 2.6 / 3, median 1."""
    metric = SuperpixelMetric(r=0)
    samples = []
    for col in (5, 5, 9):
        sp, gt = _pair(col)
        samples.append(_sample(sp, [gt]))
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert [r['ASA'] for r in metric.results] == [1.0, 1.0, 0.6]
    assert out['ASA'] == pytest.approx((1.0 + 1.0 + 0.6) / 3)
    assert out['num_superpixels'] == pytest.approx(2.0)


def test_metric_passes_its_boundary_tolerance():
    """GT boundary at columns 4/5, prediction's at 6/7: BR = 0 at the image's default
    tolerance (round(0.0025 * 14.1) = 0 px) and 1 with r=3 (every GT boundary pixel within 3
    columns of a predicted one)."""
    sp, gt = _pair(7)
    for r, want in ((None, 0.0), (0, 0.0), (3, 1.0)):
        metric = SuperpixelMetric(r=r)
        metric.process({}, [_sample(sp, [gt])])
        assert metric.results[0]['BR'] == want, r
