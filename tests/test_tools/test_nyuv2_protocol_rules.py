"""tools/dataset_converters/nyuv2_superpixel.py: the benchmark rules that the round-trip tests
leave open (found by mutation testing): the border threshold and its rounding, the filling of
small unlabelled holes, the segment-code order that the lower median follows, and 4- versus
8-connected splitting. Expected maps are derived by hand from the rules in the module
docstring."""
import numpy as np
import pytest

h5py = pytest.importorskip('h5py')


@pytest.fixture(scope='module')
def conv(load_script):
    return load_script('tools/dataset_converters/nyuv2_superpixel.py')


def _write_mat(path, imgs):
    """N x H x W x 3 RGB images stored as MATLAB v7.3 does (N x 3 x W x H), zero maps."""
    n, h, w, _ = imgs.shape
    with h5py.File(path, 'w') as f:
        f.create_dataset('images', data=np.ascontiguousarray(imgs.transpose(0, 3, 2, 1)))
        f.create_dataset('labels', data=np.zeros((n, w, h), np.uint16))
        f.create_dataset('instances', data=np.zeros((n, w, h), np.uint8))


def test_border_is_grey_253_or_more_in_every_image(conv, tmp_path):
    """Grey = round(0.2989 R + 0.5870 G + 0.1140 B) (MATLAB rgb2gray), border when >= 253 in
    all images. Hand: RGB 253 -> 252.97 -> 253 (border); RGB 252 -> 251.97 -> 252 (not);
    255 in two images but 100 in the third (not); 255 everywhere (border); RGB (245, 255,
    255) -> 73.23 + 149.69 + 29.07 = 251.99 -> 252 (not; with the R and B weights swapped,
    as for a BGR read, 253.83 -> border)."""
    imgs = np.zeros((3, 4, 6, 3), np.uint8)
    imgs[:, :, 0] = 253
    imgs[:, :, 1] = 255
    imgs[2, :, 1] = 100
    imgs[:, :, 2] = 252
    imgs[:, :, 4] = 255
    imgs[:, :, 5] = (245, 255, 255)
    path = tmp_path / 'nyu.mat'
    _write_mat(path, imgs)
    with conv.NYUv2Labeled(str(path)) as nyu:
        mask = nyu.border_mask()
    assert mask.shape == (4, 6)
    assert mask.all(axis=0).tolist() == [True, False, False, False, True, False]
    assert (mask == mask[0]).all()


def _maps(h=48, w=64):
    return np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)


def test_small_unlabelled_holes_are_filled_large_ones_kept(conv):
    """Class 5 everywhere but a 15 x 15 hole (225 px, too wide for the radius-5 closing, but
    a background component < 500 px: foreground, filled) and a 26 x 26 hole (over 500 px
    even after the closing rounds its corners: stays unlabelled at its centre)."""
    labels, inst = _maps()
    labels[:] = 5
    labels[4:19, 4:19] = 0     # small hole, centre (11, 11)
    labels[18:44, 30:56] = 0   # large hole, centre (31, 43)
    seg = conv.ground_truth(labels, inst, None, crop=0)
    assert seg[11, 11] == seg[0, 0] > 0 and (seg[4:19, 4:19] == seg[0, 0]).all()
    assert seg[31, 43] == 0


def test_gap_takes_the_lower_code_instance_major(conv):
    """A 1-px unlabelled column between (class 5, instance 1) on the left and (class 3,
    instance 2) on the right: code = instance * 1000 + class gives 1005 < 2003, so with equal
    counts in every 5 x 5 window the lower median is the left segment (a class-major code,
    5001 > 3002, would give the right one)."""
    labels, inst = _maps()
    labels[:, :31], inst[:, :31] = 5, 1
    labels[:, 32:], inst[:, 32:] = 3, 2
    seg = conv.ground_truth(labels, inst, None, crop=0)
    assert seg[0, 0] != seg[0, 40]
    assert (seg[:, 31] == seg[0, 0]).all()


def test_connectivity_4_and_8(conv):
    """Two blocks of one code touching at a corner (and the other code in the two other
    quadrants): 4-connected splitting gives 4 regions, 8-connected 2; ids 1..n in row-major
    order of first appearance."""
    labels, inst = np.full((8, 8), 2, np.int64), np.zeros((8, 8), np.int64)
    labels[:4, :4] = labels[4:, 4:] = 7
    quad = np.kron(np.array([[1, 2], [3, 4]]), np.ones((4, 4), np.int64))
    seg4 = conv.ground_truth(labels, inst, None, crop=0, fill=False, connectivity=4)
    np.testing.assert_array_equal(seg4, quad)
    seg8 = conv.ground_truth(labels, inst, None, crop=0, fill=False, connectivity=8)
    np.testing.assert_array_equal(seg8, np.where((quad == 1) | (quad == 4), 1, 2))
    seg0 = conv.ground_truth(labels, inst, None, crop=0, fill=False)
    np.testing.assert_array_equal(seg0, seg8)  # no split: one region per code
