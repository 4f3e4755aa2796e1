"""Transforms and loading checks: cases the other tests leave open (found by mutation
testing). Expected values are hand-derived or come from mmseg's own LoadAnnotations."""
import copy

import cv2
import numpy as np
import pytest
from mmseg.datasets.transforms import LoadAnnotations

from clustseg.datasets import BadInputError, load_bsds_segmentations
from clustseg.datasets.coco_checks import check_annotated_size
from clustseg.datasets.transforms import (LoadSemanticAnnotationsChecked,
                                          LoadSuperpixelAnnotations, SuperpixelRandomCrop,
                                          SuperpixelRandomResize, semantic_label_lut)

MAT = 'tests/data/bsds500/groundTruth/val/101085.mat'  # 5 annotators


def _sample(h=40, w=60):
    seg = np.arange(h * w, dtype=np.int64).reshape(h, w)
    img = np.zeros((h, w, 3), np.uint8)
    return dict(img=img, img_shape=(h, w), gt_seg_map=seg, seg_fields=['gt_seg_map'])


def test_random_crop_offsets_cover_every_position():
    """A 30 x 30 crop of a 40 x 60 image can start at rows 0..10 and columns 0..30 (both
    ends included); seeded draws reach each of them, and the label window is the input's."""
    t = SuperpixelRandomCrop(crop_size=(30, 30))
    np.random.seed(0)
    ys, xs = set(), set()
    base = _sample()
    for _ in range(1500):
        out = t(copy.deepcopy(base))
        y1, y2, x1, x2 = out['crop_bbox']
        ys.add(y1)
        xs.add(x1)
        assert out['gt_seg_map'][0, 0] == y1 * 60 + x1
    assert ys == set(range(11)) and xs == set(range(31))


def test_random_resize_spans_the_ratio_range():
    """Ratios uniform in (0.5, 2): over seeded draws the 40-row image becomes both < 22 and
    > 78 rows (ratios below 0.55 and above 1.95 occur)."""
    t = SuperpixelRandomResize(ratio_range=(0.5, 2.0))
    np.random.seed(0)
    hs = [t(_sample())['img_shape'][0] for _ in range(300)]
    assert min(hs) < 22 and max(hs) > 78
    # ratio 0.73: 40 x 60 -> round(29.2) x round(43.8) = 29 x 44; scale and scale_factor (w, h)
    out = SuperpixelRandomResize(ratio_range=(0.73, 0.73))(_sample(40, 60))
    assert out['img_shape'] == (29, 44) and out['scale'] == (44, 29)
    assert out['scale_factor'] == (44 / 60, 29 / 40)


def test_random_annotator_reaches_every_annotator(repo_root):
    segs = load_bsds_segmentations(str(repo_root / MAT))
    t = LoadSuperpixelAnnotations(annotator='random', with_all=False)
    results = dict(seg_map_path=str(repo_root / MAT), seg_fields=[])
    np.random.seed(0)
    seen = set()
    for _ in range(60):
        out = t(copy.deepcopy(results))
        np.testing.assert_array_equal(out['gt_seg_map'], segs[out['annotator_idx']])
        seen.add(out['annotator_idx'])
    assert seen == set(range(5))
    assert LoadSuperpixelAnnotations(annotator=-1, with_all=False)(
        copy.deepcopy(results))['annotator_idx'] == 4


def test_label_lut_reduces_zero_before_the_label_map(tmp_path):
    """mmseg's order: reduce_zero_label (0 -> 255, v -> v - 1) first, then label_map on the
    reduced ids. Hand: file 1 -> 0 -> 5, file 5 -> 4 -> 1, file 0 -> 255, 255 -> 255."""
    lut = semantic_label_lut(True, {0: 5, 4: 1})
    assert (lut[0], lut[1], lut[5], lut[2], lut[255]) == (255, 5, 1, 1, 255)
    # the same as mmseg's LoadAnnotations on a label image holding every value 0..255
    path = str(tmp_path / 'all_values.png')
    cv2.imwrite(path, np.arange(256, dtype=np.uint8).reshape(1, 256))
    for reduce, label_map in ((True, {0: 5, 4: 1}), (False, {3: 0, 0: 3}), (True, None)):
        ref = LoadAnnotations(reduce_zero_label=reduce)(dict(
            seg_map_path=path, reduce_zero_label=reduce, label_map=label_map,
            seg_fields=[]))['gt_seg_map']
        np.testing.assert_array_equal(semantic_label_lut(reduce, label_map), ref.ravel())


@pytest.mark.parametrize('value', [256, 300, 65535])
def test_semantic_label_value_just_above_255_is_refused(tmp_path, value):
    """A 16-bit label map holding 256 would wrap to class 0 in the uint8 cast."""
    path = tmp_path / 'x.png'
    label = np.zeros((4, 5), np.uint16)
    label[1, 2] = value
    cv2.imwrite(str(path), label)
    t = LoadSemanticAnnotationsChecked(reduce_zero_label=False)
    with pytest.raises(BadInputError, match=rf'value\(s\) {value}'):
        t(dict(seg_map_path=str(path), reduce_zero_label=False, seg_fields=[]))
    label[1, 2] = 255  # the largest accepted value
    cv2.imwrite(str(path), label)
    out = t(dict(seg_map_path=str(path), reduce_zero_label=False, seg_fields=[]))
    assert out['gt_seg_map'][1, 2] == 255


def test_annotated_size_is_not_accepted_transposed():
    """A 20 x 30 (H x W) image whose JSON says height 30, width 20 (e.g. an EXIF-rotated
    photo) is refused; the right size passes."""
    check_annotated_size('a.jpg', 'image', (20, 30), dict(height=20, width=30))
    with pytest.raises(BadInputError, match=r'a\.jpg: image is 20 x 30'):
        check_annotated_size('a.jpg', 'image', (20, 30), dict(height=30, width=20))
