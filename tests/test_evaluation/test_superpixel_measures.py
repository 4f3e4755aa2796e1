"""Superpixel measures: hand-checked cases and brute-force cross-checks."""
import math

import numpy as np
import pytest

from clustseg.evaluation.functional import (achievable_segmentation_accuracy, boundary_map,
                                            boundary_precision, boundary_recall,
                                            boundary_tolerance, compactness, contingency_table,
                                            evaluate_superpixels, grid_superpixels,
                                            num_superpixels, slic_superpixels,
                                            undersegmentation_error)


def _brute_asa_ue(sp, gt):
    """Loop implementation of the textbook formulas (small maps only)."""
    n = sp.size
    asa, ue = 0, 0
    for j in np.unique(sp):
        s = sp == j
        inter = [np.sum(s & (gt == i)) for i in np.unique(gt)]
        asa += max(inter)
        ue += sum(min(x, s.sum() - x) for x in inter)
    return asa / n, ue / n


def _grid(h, w, cell):
    return (np.arange(h)[:, None] // cell) * (w // cell) + np.arange(w)[None, :] // cell


def test_two_by_two_hand_example():
    sp = np.array([[0, 0], [0, 1]])
    gt = np.array([[5, 5], [7, 7]])
    # S0 = 3 px: 2 in G5, 1 in G7; S1 = 1 px in G7
    assert achievable_segmentation_accuracy(sp, gt) == pytest.approx(3 / 4)
    # min(2, 1) + min(1, 2) + min(1, 0) = 2
    assert undersegmentation_error(sp, gt) == pytest.approx(2 / 4)
    table, sp_ids, gt_ids = contingency_table(sp, gt)
    np.testing.assert_array_equal(table, [[2, 1], [0, 1]])
    np.testing.assert_array_equal(sp_ids, [0, 1])
    np.testing.assert_array_equal(gt_ids, [5, 7])


def test_identical_maps_are_perfect():
    rng = np.random.default_rng(0)
    gt = _grid(30, 40, 7) * 3 + 100  # arbitrary ids
    sp = rng.permutation(gt.max() + 1)[gt]  # same partition, other ids
    res = evaluate_superpixels(sp, gt)
    assert res['ASA'] == 1.0 and res['UE'] == 0.0
    assert res['BR'] == 1.0 and res['BP'] == 1.0
    for r in (0, 1, 3):
        assert boundary_recall(sp, gt, r=r) == 1.0 and boundary_precision(sp, gt, r=r) == 1.0


def test_matches_brute_force_on_random_maps():
    rng = np.random.default_rng(1)
    for _ in range(3):
        sp = rng.integers(-3, 9, size=(13, 17)) * 1000  # sparse negative ids
        gt = rng.integers(0, 5, size=(13, 17))
        asa, ue = _brute_asa_ue(sp, gt)
        assert achievable_segmentation_accuracy(sp, gt) == pytest.approx(asa)
        assert undersegmentation_error(sp, gt) == pytest.approx(ue)
        table, _, _ = contingency_table(sp, gt)
        assert table.sum() == sp.size and table.max(1).sum() / sp.size == pytest.approx(asa)
        assert num_superpixels(sp) == len(np.unique(sp))


def test_boundary_rule_and_shift_tolerance():
    gt = np.zeros((6, 8), dtype=np.int64)
    gt[:, 4:] = 1
    b = boundary_map(gt)
    assert b.sum() == 12 and b[:, 3].all() and b[:, 4].all()  # both sides of the change
    sp = np.zeros_like(gt)
    sp[:, 5:] = 1  # boundary shifted right by one pixel: columns 4 and 5
    assert boundary_recall(sp, gt, r=0) == 0.5  # column 4 is on both boundaries
    assert boundary_recall(sp, gt, r=1) == 1.0
    assert boundary_precision(sp, gt, r=0) == 0.5  # tp 6 (column 4), fp 6 (column 5)
    assert boundary_precision(sp, gt, r=1) == 1.0
    sp2 = np.zeros_like(gt)
    sp2[:, 6:] = 1  # shifted by two: columns 5 and 6
    assert boundary_recall(sp2, gt, r=0) == 0.0
    assert boundary_recall(sp2, gt, r=1) == 0.5 and boundary_recall(sp2, gt, r=2) == 1.0
    # extra superpixel boundaries lower precision, not recall
    sp3 = sp.copy()
    sp3[:3, :] += 10  # rows 2 and 3 become boundary pixels too
    assert boundary_recall(sp3, gt, r=1) == 1.0
    # tp: the 12 GT boundary pixels; fp: the row-2/3 pixels farther than 1 px from columns 3
    # and 4, i.e. in columns 0, 1, 6, 7 -> 8
    assert boundary_precision(sp3, gt, r=1) == pytest.approx(12 / 20)
    assert boundary_tolerance(481, 321) == 1 and boundary_tolerance(321, 481) == 1
    # halves round up, others to the nearest: 0.0025 x 1000 = 2.5 -> 3, x 1414.2 = 3.54 -> 4
    assert boundary_tolerance(600, 800) == 3 and boundary_tolerance(1000, 1000) == 4


def _stutz_boundary(labels, i, j):
    """The benchmark's 4-connected boundary test, pixel by pixel (the test's oracle)."""
    h, w = labels.shape
    return any(0 <= k < h and 0 <= m < w and labels[k, m] != labels[i, j]
               for k, m in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)))


def _stutz_br_bp(sp, gt, r):
    """BR and BP computed as the benchmark's loops do (window clipped at the border)."""
    h, w = gt.shape

    def near(labels, i, j):
        return any(_stutz_boundary(labels, k, m)
                   for k in range(max(0, i - r), min(h - 1, i + r) + 1)
                   for m in range(max(0, j - r), min(w - 1, j + r) + 1))
    tp = fn = fp = 0
    for i in range(h):
        for j in range(w):
            if _stutz_boundary(gt, i, j):
                hit = near(sp, i, j)
                tp, fn = tp + hit, fn + (not hit)
            elif _stutz_boundary(sp, i, j) and not near(gt, i, j):
                fp += 1
    return tp / (tp + fn), tp / (tp + fp)


@pytest.mark.parametrize('seed', range(4))
def test_br_bp_equal_the_benchmark_loops(seed):
    rng = np.random.default_rng(seed)
    h, w = 9, 13
    # blocky random maps (boundaries with runs, as superpixels have), a few labels
    gt = np.kron(rng.integers(0, 3, (3, 5)), np.ones((3, 3), dtype=np.int64))[:h, :w]
    sp = np.kron(rng.integers(0, 4, (5, 7)), np.ones((2, 2), dtype=np.int64))[:h, :w]
    for r in (0, 1, 2):
        br, bp = _stutz_br_bp(sp, gt, r)
        assert boundary_recall(sp, gt, r=r, ignore_index=None) == pytest.approx(br)
        assert boundary_precision(sp, gt, r=r, ignore_index=None) == pytest.approx(bp)
        res = evaluate_superpixels(sp, gt, r=r, ignore_index=None)
        assert (res['BR'], res['BP']) == (pytest.approx(br), pytest.approx(bp))


def test_compactness_of_square_grid_is_pi_over_4_exactly():
    for cell in (1, 3, 4, 5):
        assert compactness(_grid(cell * 6, cell * 4, cell)) == math.pi / 4
    grid = grid_superpixels(12, 8, 6)  # 4x4 cells
    assert grid.max() + 1 == 6 and compactness(grid) == math.pi / 4
    # one 2x8 strip: area 16, perimeter 20 -> 4*pi*16/400
    assert compactness(np.zeros((2, 8), dtype=int)) == pytest.approx(4 * math.pi * 16 / 400)
    # two labels, one 3-px L-shape inside a 2x2 image: areas 3 and 1, perimeters 8 and 4
    sp = np.array([[0, 0], [0, 1]])
    want = 3 / 4 * 4 * math.pi * 3 / 64 + 1 / 4 * 4 * math.pi * 1 / 16
    assert compactness(sp) == pytest.approx(want)


def test_ignore_index_excludes_pixels():
    gt = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [-1, -1, -1, -1]])
    sp = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 0, 1]])  # mixed only in ignored row
    res = evaluate_superpixels(sp, gt)
    assert res['ASA'] == 1.0 and res['UE'] == 0.0 and res['BR'] == 1.0 and res['BP'] == 1.0
    res_all = evaluate_superpixels(sp, gt, ignore_index=None)
    assert res_all['ASA'] < 1.0 and res_all['BR'] < 1.0
    # the ignored row is no boundary and makes none in the row above it
    b = boundary_map(gt, gt != -1)
    assert b[1].tolist() == [False, True, True, False] and not b[2].any()
    assert boundary_map(gt)[1].all()


def test_evaluate_averages_over_annotators():
    sp = _grid(8, 8, 4)
    g1 = sp.copy()
    g2 = np.zeros_like(sp)
    g2[:, 4:] = 1
    res = evaluate_superpixels(sp, np.stack([g1, g2]))
    singles = [evaluate_superpixels(sp, g) for g in (g1, g2)]
    for k in ('ASA', 'UE', 'BR', 'BP'):
        assert res[k] == pytest.approx((singles[0][k] + singles[1][k]) / 2)
    assert singles[1]['BP'] < 1.0 and res['num_superpixels'] == 4
    assert res == evaluate_superpixels(sp, [g1, g2])


def test_baselines():
    rng = np.random.default_rng(2)
    img = np.zeros((60, 90, 3), dtype=np.uint8)
    img[:, 45:] = (200, 30, 30)
    img = np.clip(img + rng.integers(0, 10, img.shape), 0, 255).astype(np.uint8)
    sp = slic_superpixels(img, 24)
    assert sp.shape == (60, 90) and sp.dtype == np.int64
    n = sp.max() + 1
    assert np.array_equal(np.unique(sp), np.arange(n)) and 10 <= n <= 40
    gt = (np.arange(90)[None, :] >= 45).repeat(60, 0).astype(int)
    assert achievable_segmentation_accuracy(sp, gt) > 0.99  # a strong edge is respected
    for h, w, k in ((481, 321, 600), (100, 30, 12), (5, 5, 100)):
        g = grid_superpixels(h, w, k)
        assert g.shape == (h, w)
        cnt = num_superpixels(g)
        assert np.array_equal(np.unique(g), np.arange(cnt))
        assert 0.5 * min(k, h * w) <= cnt <= 1.5 * min(k, h * w)
        sizes = np.bincount(g.ravel())
        assert sizes.max() <= 2 * sizes.min()


def test_bad_inputs_raise_named_errors():
    sp = np.zeros((4, 4), dtype=int)
    with pytest.raises(ValueError, match='sp'):
        achievable_segmentation_accuracy(np.zeros((4, 4, 1), dtype=int), sp)
    with pytest.raises(ValueError, match='gt'):
        undersegmentation_error(sp, np.zeros((4, 5), dtype=int))
    with pytest.raises(ValueError, match='gt'):
        achievable_segmentation_accuracy(sp, np.zeros((4, 4)))  # float
    with pytest.raises(ValueError, match='gts'):
        evaluate_superpixels(sp, np.zeros((2, 4, 5), dtype=int))
    with pytest.raises(ValueError, match='gts'):
        evaluate_superpixels(sp, -np.ones((1, 4, 4), dtype=int))
    with pytest.raises(ValueError, match='r must'):
        boundary_recall(sp, sp, r=-1)
    with pytest.raises(ValueError, match='n_segments'):
        grid_superpixels(4, 4, 0)
    with pytest.raises(ValueError, match='channel_order'):
        slic_superpixels(np.zeros((4, 4, 3), np.uint8), 4, channel_order='hsv')


def _has_ximgproc():
    import cv2
    return hasattr(cv2, 'ximgproc')


@pytest.mark.parametrize('method', ['lsc', 'seeds'])
def test_contrib_baselines(method):
    """LSC / SEEDS (OpenCV contrib): labels 0..n-1 that respect a strong edge; without the
    contrib module (the project's own environment) the error says how to add it."""
    from clustseg.evaluation import functional as F
    fn = getattr(F, f'{method}_superpixels')
    rng = np.random.default_rng(2)
    img = np.zeros((60, 90, 3), dtype=np.uint8)
    img[:, 45:] = (200, 30, 30)
    img = np.clip(img + rng.integers(0, 10, img.shape), 0, 255).astype(np.uint8)
    with pytest.raises(ValueError, match='uint8 BGR'):
        fn(img.astype(np.float32), 24)
    with pytest.raises(ValueError, match='n_segments'):
        fn(img, 0)
    if not _has_ximgproc():
        with pytest.raises(RuntimeError, match='opencv-contrib-python-headless'):
            fn(img, 24)
        return
    sp = fn(img, 24)
    n = sp.max() + 1
    assert sp.shape == (60, 90) and sp.dtype == np.int64
    assert np.array_equal(np.unique(sp), np.arange(n)) and 4 <= n <= 60
    gt = (np.arange(90)[None, :] >= 45).repeat(60, 0).astype(int)
    assert achievable_segmentation_accuracy(sp, gt) > 0.99
    if method == 'seeds':  # on 321 x 481, 4 levels allow (481 >> 4) (321 >> 4) = 600 at most
        big = np.repeat(np.repeat(img, 6, 0), 6, 1)[:321, :481]
        assert fn(big, 2000, num_levels=4).max() + 1 <= 600 < fn(big, 2000).max() + 1


class _FakeContribSuperpixels:
    """Stands in for an OpenCV-contrib superpixel object: records its calls and returns labels
    with gaps in their ids (7 and 3, as OpenCV may leave after enforcing connectivity)."""

    def __init__(self, calls, shape, name, *args):
        self.calls, self.shape = calls, shape
        calls.append((name, ) + args)

    def iterate(self, *args):
        self.calls.append(('iterate', ) + tuple(a if np.isscalar(a) else a.shape for a in args))

    def enforceLabelConnectivity(self, size):
        self.calls.append(('connectivity', size))

    def getLabels(self):
        h, w = self.shape
        return np.where(np.arange(w)[None, :] < w // 2, 7, 3).repeat(h, 0).astype(np.int32)


@pytest.mark.parametrize('method', ['lsc', 'seeds'])
def test_contrib_baselines_wrapper_logic(method, monkeypatch):
    """What the wrappers do around OpenCV contrib, checked with a stand-in module (the project's
    environment has no contrib): LSC's region size from the count and its connectivity step,
    SEEDS' block levels (the largest L <= 4 whose grid holds the count) and HSV input, and the
    labels renumbered 0..n-1 as int64 in increasing id order."""
    import types

    import cv2

    from clustseg.evaluation import functional as F
    calls = []

    def lsc(img, size, ratio):
        return _FakeContribSuperpixels(calls, img.shape[:2], 'lsc', img.shape, size, ratio)

    def seeds(w, h, c, n, levels, prior, bins, double_step):
        return _FakeContribSuperpixels(calls, (h, w), 'seeds', w, h, c, n, levels, prior, bins,
                                       double_step)

    monkeypatch.setattr(cv2, 'ximgproc', types.SimpleNamespace(
        createSuperpixelLSC=lsc, createSuperpixelSEEDS=seeds), raising=False)
    img = np.zeros((60, 90, 3), dtype=np.uint8)
    fn = getattr(F, f'{method}_superpixels')
    sp = fn(img, 24)
    assert sp.dtype == np.int64 and sp.shape == (60, 90)
    assert (sp[:, :45] == 1).all() and (sp[:, 45:] == 0).all()  # ids 7 -> 1, 3 -> 0
    if method == 'lsc':
        # region size round(sqrt(60 * 90 / 24)) = 15; OpenCV's ratio, iterations, connectivity
        assert calls == [('lsc', (60, 90, 3), 15, 0.075), ('iterate', 10), ('connectivity', 25)]
    else:
        # (90 >> 3) (60 >> 3) = 77 blocks hold 24, (90 >> 4) (60 >> 4) = 15 do not: L = 3
        assert calls == [('seeds', 90, 60, 3, 24, 3, 2, 5, False), ('iterate', (60, 90, 3), 4)]
        calls.clear()
        fn(img, 2000)  # no grid holds 2000: L = 1
        assert calls[0][5] == 1
