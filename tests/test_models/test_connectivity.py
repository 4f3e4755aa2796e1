"""enforce_connectivity: splitting, island merging, border rule, contiguity, speed."""
import time

import numpy as np
import pytest
from scipy import ndimage

from clustseg.models.utils import enforce_connectivity


def _is_4connected(labels):
    """Every label of a contiguous 0..n-1 map forms one 4-connected component."""
    for k, box in enumerate(ndimage.find_objects(labels + 1)):
        _, n = ndimage.label(labels[box] == k)  # default structure = 4-connectivity
        if n != 1:
            return False
    return True


def test_island_merged_into_surrounding_segment():
    lab = np.zeros((8, 8), dtype=np.int64)
    lab[:, 5:] = 1
    lab[2, 1:4] = 7  # 3-pixel island inside label 0
    out = enforce_connectivity(lab, min_size=4)
    assert out.dtype == np.int64 and out.max() == 1
    assert (out[:, :5] == out[0, 0]).all() and (out[:, 5:] == out[0, 7]).all()
    # below min_size threshold nothing changes except relabelling
    kept = enforce_connectivity(lab, min_size=3)
    assert kept.max() == 2 and (kept[2, 1:4] == kept[2, 1]).all()


def test_disconnected_label_is_split():
    lab = np.zeros((6, 9), dtype=np.int64)
    lab[:, 3:6] = 1  # label 0 occurs left and right of the band
    out = enforce_connectivity(lab, min_size=0)
    assert out.max() == 2  # three regions
    assert out[0, 0] != out[0, 8] and len(np.unique(out)) == 3
    # numbering follows raster order of first pixels
    assert out[0, 0] == 0 and out[0, 3] == 1 and out[0, 6] == 2
    # diagonal contact does not connect (4-connectivity)
    diag = np.array([[0, 1], [1, 0]])
    assert enforce_connectivity(diag, 1).max() == 3


def test_longest_border_wins_then_larger_neighbour():
    # region 5 (3 px) shares 5 edges with region 1 (9 px) and 3 with the larger region 2 (12 px)
    lab = np.array([[1, 1, 1, 1, 1, 1],
                    [1, 5, 5, 5, 1, 1],
                    [2, 2, 2, 2, 2, 2],
                    [2, 2, 2, 2, 2, 2]])
    out = enforce_connectivity(lab, min_size=4)
    assert out.max() == 1 and (out[:2] == out[0, 0]).all() and (out[2:] == out[3, 0]).all()
    # a single pixel with one edge to each of three regions joins the largest one (sizes 5, 2, 4)
    lab = np.array([[0, 0, 0, 0],
                    [0, 5, 5, 1],
                    [2, 2, 2, 2]])
    out = enforce_connectivity(lab, min_size=2)
    assert out[1, 3] == out[0, 0] and out[1, 1] != out[0, 0] and out.max() == 2


def test_smallest_first_chain_is_not_merged_through():
    # A (label 0, 2 px) touches only B (label 1, 4 px); B touches A, C (12 px) and D (6 px).
    # One by one, A merges into B first, and B + A (6 px) is then large enough: B keeps out
    # of C. Merging every pick at once would have taken B (whose longest border, tied with A's,
    # is with the larger C) and A into C.
    lab = np.array([[2, 2, 2, 2, 2, 2],
                    [2, 2, 2, 2, 2, 2],
                    [1, 1, 1, 3, 3, 3],
                    [0, 0, 1, 3, 3, 3]])
    out = enforce_connectivity(lab, min_size=5)
    assert out.max() == 2
    assert out[3, 0] == out[2, 0] != out[0, 0] and out[2, 3] not in (out[0, 0], out[2, 0])


def test_islands_join_their_block():
    """Small islands inside a mosaic of large blocks: each joins the block around it."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        lab = np.repeat(np.repeat(rng.integers(0, 50, (6, 8)), 8, 0), 8, 1)  # 48 x 64
        isl = rng.choice(lab.size, 25, replace=False)
        ys, xs = np.unravel_index(isl, lab.shape)
        keep = (ys % 8 > 1) & (ys % 8 < 6) & (xs % 8 > 1) & (xs % 8 < 6)  # inside a block
        lab[ys[keep], xs[keep]] = 100 + np.arange(keep.sum())
        out = enforce_connectivity(lab, min_size=10)
        # every island joins its block: the output is the block map relabelled
        blocks = enforce_connectivity(np.repeat(np.repeat(
            lab[::8, ::8], 8, 0), 8, 1), min_size=0)
        assert np.array_equal(out, blocks)


def test_iterates_until_no_small_region_and_single_region_case():
    rng = np.random.default_rng(0)
    lab = rng.integers(0, 6, size=(40, 50))
    out = enforce_connectivity(lab, min_size=30)
    sizes = np.bincount(out.ravel())
    assert sizes.min() >= 30 and _is_4connected(out)
    assert np.array_equal(np.unique(out), np.arange(out.max() + 1))
    # when the whole image cannot reach min_size it ends as one region
    assert (enforce_connectivity(lab[:4, :4], min_size=100) == 0).all()
    # already valid maps are only relabelled
    good = np.repeat(np.arange(5), 10)[None].repeat(4, 0) + 3
    assert np.array_equal(enforce_connectivity(good, 5), good - 3)


def test_speed_on_bsds_sized_map():
    # ~600 labels on a 481x321 map: a jittered grid plus noise fragments
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:481, :321]
    lab = (yy // 16) * 21 + (xx // 16)
    noise = rng.random(lab.shape) < 0.02
    lab[noise] = rng.integers(0, lab.max() + 1, noise.sum())
    enforce_connectivity(lab, 64)  # warm-up
    t0 = time.perf_counter()
    out = enforce_connectivity(lab, 64)
    elapsed = time.perf_counter() - t0
    assert _is_4connected(out) and 400 < out.max() + 1 < 700
    assert np.bincount(out.ravel()).min() >= 64
    assert elapsed < 0.5, f'enforce_connectivity took {elapsed:.3f} s'  # ~0.05 s unloaded


def test_bad_inputs():
    with pytest.raises(ValueError, match='labels'):
        enforce_connectivity(np.zeros((2, 2, 2), dtype=int), 1)
    with pytest.raises(ValueError, match='labels'):
        enforce_connectivity(np.zeros((2, 2)), 1)
    with pytest.raises(ValueError, match='min_size'):
        enforce_connectivity(np.zeros((2, 2), dtype=int), -1)
    with pytest.raises(ValueError, match='min_size'):
        enforce_connectivity(np.zeros((2, 2), dtype=int), 2.5)
