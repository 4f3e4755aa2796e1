"""tools/dataset_converters/nyuv2_superpixel.py on a small HDF5 file laid out like
nyu_depth_v2_labeled.mat (MATLAB v7.3: arrays stored with their axes reversed), read back
with SuperpixelFolderDataset."""

import cv2
import numpy as np
import pytest

h5py = pytest.importorskip('h5py')

from clustseg.datasets import SuperpixelFolderDataset  # noqa: E402
from clustseg.datasets.transforms.loading import (LoadImageChecked,  # noqa: E402
                                                  LoadSuperpixelAnnotations)

H, W, N = 48, 64, 4
A, B, C, D = 1 * 1000 + 5, 2 * 1000 + 5, 7, 1 * 1000 + 3  # instance * 1000 + label


@pytest.fixture(scope='module')
def conv(load_script):
    return load_script('tools/dataset_converters/nyuv2_superpixel.py')


def _maps():
    """Per image (H x W, MATLAB orientation): labels, instances."""
    labels = np.zeros((N, H, W), np.uint16)
    inst = np.zeros((N, H, W), np.uint8)
    # image 0: A | 1-px unlabelled column 31 | B on top (same class, two instances);
    # C below-left with a 3 x 3 unlabelled hole; a large unlabelled block below-right
    labels[0, :24, :31], inst[0, :24, :31] = 5, 1
    labels[0, :24, 32:], inst[0, :24, 32:] = 5, 2
    labels[0, 24:, :16] = 7
    labels[0, 30:33, 5:8] = 0
    # image 1: one (class 3, instance 1) pair in two separate blocks, on class 9
    labels[1] = 9
    labels[1, 5:15, 5:15], inst[1, 5:15, 5:15] = 3, 1
    labels[1, 30:40, 40:50], inst[1, 30:40, 40:50] = 3, 1
    # image 2: nothing labelled; image 3: class 2 everywhere
    labels[3] = 2
    return labels, inst


def _images(seed=0):
    """N x H x W x 3 RGB; columns 0-1 white in every image (the 'border'), the rest <= 200."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 201, size=(N, H, W, 3), dtype=np.uint8)
    imgs[:, :, :2] = 255
    return imgs


def _write_mat(path, imgs, labels, inst, drop=None, labels_stored=None):
    """Store as MATLAB v7.3 does: images H x W x 3 x N -> N x 3 x W x H, maps -> N x W x H."""
    with h5py.File(path, 'w') as f:
        data = {'images': imgs.transpose(0, 3, 2, 1),
                'labels': labels.transpose(0, 2, 1) if labels_stored is None else labels_stored,
                'instances': inst.transpose(0, 2, 1),
                'depths': np.zeros((N, W, H), np.float32)}
        for key, arr in data.items():
            if key != drop:
                f.create_dataset(key, data=np.ascontiguousarray(arr))


@pytest.fixture
def mat(tmp_path):
    imgs = _images()
    labels, inst = _maps()
    path = tmp_path / 'nyu_depth_v2_labeled.mat'
    _write_mat(path, imgs, labels, inst)
    return str(path), imgs, labels.astype(np.int64), inst.astype(np.int64)


def _load(root):
    ds = SuperpixelFolderDataset(
        data_root=str(root), img_suffix='.png', test_mode=True,
        pipeline=[LoadImageChecked(channel_order='rgb'),
                  LoadSuperpixelAnnotations(annotator='first', with_all=False)])
    return {ds.get_data_info(i)['img_id']: ds[i] for i in range(len(ds))}


def _same_partition(a, b):
    """True when a and b are the same partition (ids may differ), 0 mapped to 0."""
    pairs = set(zip(a.ravel().tolist(), b.ravel().tolist()))
    return (len(pairs) == len(np.unique(a)) == len(np.unique(b))
            and np.array_equal(a == 0, b == 0))


def test_raw_round_trip(conv, mat, tmp_path):
    """No filling, no border mask, no crop: images and (class, instance) segments exact."""
    path, imgs, labels, inst = mat
    out = tmp_path / 'out'
    ids = conv.convert(path, str(out), crop=0, fill=False, border_mask=False)
    assert ids == ['00000001', '00000002', '00000003', '00000004']
    got = _load(out)
    assert sorted(got) == ids
    for k, img_id in enumerate(ids):
        res = got[img_id]
        np.testing.assert_array_equal(res['img'], imgs[k])
        seg = res['gt_seg_map']
        assert seg.shape == (H, W) and seg.dtype == np.int64
        assert _same_partition(seg, inst[k] * 1000 + labels[k])
        # ids are 1..n, 0 only where unlabelled
        assert set(np.unique(seg[seg > 0]).tolist()) == set(range(1, seg.max() + 1))
    # same class, different instances: different regions; the PNG is 16-bit
    seg0 = got['00000001']['gt_seg_map']
    assert seg0[0, 0] != seg0[0, 40] and seg0[0, 31] == 0 and seg0[40, 50] == 0
    png = cv2.imread(str(out / 'labels' / '00000001.png'), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16
    assert (got['00000003']['gt_seg_map'] == 0).all()


def test_benchmark_protocol(conv, mat, tmp_path):
    """Default: filling, border mask, crop; checked on pixels whose outcome is certain."""
    path, imgs, labels, inst = mat
    out = tmp_path / 'nomask'
    conv.convert(path, str(out), indices=[1], crop=0)
    seg = _load(out)['00000001']['gt_seg_map']
    # the white columns 0-1 are border in every image -> unlabelled
    assert (seg[:, :2] == 0).all() and (seg[:, 2:24][labels[0, :, 2:24] > 0] > 0).all()
    # the 1-px gap between A (code 1005) and B (2005): equal counts -> lower median = A
    assert (seg[:21, 31] == seg[5, 20]).all() and seg[5, 20] != seg[5, 40]
    # a hole inside C takes C; deep inside the large unlabelled block stays unlabelled
    assert (seg[30:33, 5:8] == seg[40, 10]).all() and seg[40, 10] > 0
    assert (seg[35:, 30:] == 0).all()

    crop = 2
    out2 = tmp_path / 'crop'
    conv.main([path, str(out2), '--indices', '1', '4', '--crop', str(crop)])
    got = _load(out2)
    assert sorted(got) == ['00000001', '00000004']
    res = got['00000001']
    assert res['img'].shape == (H - 2 * crop, W - 2 * crop, 3)
    np.testing.assert_array_equal(res['img'], imgs[0, crop:-crop, crop:-crop])
    # same partition as the uncropped map, cropped (ids renumbered)
    assert _same_partition(res['gt_seg_map'], seg[crop:-crop, crop:-crop])
    # image 4 is one class everywhere: after the crop no border is left, one region
    assert (got['00000004']['gt_seg_map'] == 1).all()


def test_split_file_and_connectivity(conv, mat, tmp_path):
    path, imgs, labels, inst = mat
    split = tmp_path / 'subset.txt'
    split.write_text('# test subset\n00000002\n\n00000003  # no labels\n')
    out = tmp_path / 'split'
    conv.main([path, str(out), '--split-file', str(split), '--crop', '0', '--no-border-mask'])
    got = _load(out)
    assert sorted(got) == ['00000002', '00000003']
    seg = got['00000002']['gt_seg_map']
    assert seg[10, 10] == seg[35, 45] != seg[0, 0]  # one (class, instance) pair, two blocks
    assert len(np.unique(seg)) == 2
    out4 = tmp_path / 'conn'
    conv.convert(path, str(out4), indices=[2], crop=0, border_mask=False, connectivity=4)
    seg4 = _load(out4)['00000002']['gt_seg_map']
    assert seg4[10, 10] != seg4[35, 45] and len(np.unique(seg4)) == 3
    np.testing.assert_array_equal(got['00000002']['img'], imgs[1])
    # --overwrite replaces the outputs: the images of the earlier conversion go
    conv.main([path, str(out4), '--indices', '3', '--crop', '0', '--overwrite'])
    assert sorted(_load(out4)) == ['00000003']
    assert sorted(p.name for d in ('images', 'labels') for p in (out4 / d).iterdir()) == [
        '00000003.png'] * 2


def test_lower_median_matches_direct_rule(conv):
    rng = np.random.default_rng(1)
    seg = rng.integers(1, 6, size=(9, 11)).astype(np.float64)
    seg[rng.random(seg.shape) < 0.6] = np.nan
    rows, cols = np.nonzero(np.ones_like(seg, bool))
    got = conv.nan_lower_median(seg, rows, cols, window=5)
    for k, (r, c) in enumerate(zip(rows, cols)):
        box = seg[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3]
        vals = np.sort(box[~np.isnan(box)])
        want = vals[(len(vals) + 1) // 2 - 1] if len(vals) else np.nan
        np.testing.assert_equal(got[k], want)


def test_bad_inputs_name_file_and_key(conv, tmp_path):
    imgs, (labels, inst) = _images(), _maps()
    missing = tmp_path / 'missing.mat'
    _write_mat(missing, imgs, labels, inst, drop='instances')
    with pytest.raises(KeyError, match=r"missing\.mat.*'instances'"):
        conv.convert(str(missing), str(tmp_path / 'o1'))
    shape = tmp_path / 'shape.mat'
    _write_mat(shape, imgs, labels, inst, labels_stored=labels)  # not transposed: N x H x W
    with pytest.raises(ValueError, match=r"shape\.mat: dataset 'labels' has shape"):
        conv.convert(str(shape), str(tmp_path / 'o2'))
    big = labels.copy()
    big[0, 0, 5] = 1001
    overflow = tmp_path / 'big.mat'
    _write_mat(overflow, imgs, big, inst)
    with pytest.raises(ValueError, match=r"big\.mat: dataset 'labels', image 1: class 1001"):
        conv.convert(str(overflow), str(tmp_path / 'o3'), indices=[1])
    text = tmp_path / 'text.mat'
    text.write_text('MATLAB 5.0 MAT-file')
    with pytest.raises(OSError, match=r'text\.mat: not an HDF5 file'):
        conv.convert(str(text), str(tmp_path / 'o4'))

    good = tmp_path / 'good.mat'
    _write_mat(good, imgs, labels, inst)
    split = tmp_path / 'split.txt'
    split.write_text('1\n5\n')
    with pytest.raises(ValueError, match=r'split\.txt: index 5 out of range 1\.\.4'):
        conv.convert(str(good), str(tmp_path / 'o5'), split_file=str(split))
    split.write_text('1\nx2\n')
    with pytest.raises(ValueError, match=r"split\.txt:2: 'x2'"):
        conv.convert(str(good), str(tmp_path / 'o5'), split_file=str(split))
    with pytest.raises(ValueError, match='crop 24 leaves nothing'):
        conv.convert(str(good), str(tmp_path / 'o5'), crop=24)
    conv.convert(str(good), str(tmp_path / 'o6'), indices=[1])
    with pytest.raises(FileExistsError, match='o6/images is not empty'):
        conv.convert(str(good), str(tmp_path / 'o6'), indices=[2])
    conv.convert(str(good), str(tmp_path / 'o6'), indices=[2], overwrite=True)
