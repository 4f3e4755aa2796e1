"""tools/dataset_converters/bsds_to_folder.py: which annotator the default layout writes, and
that region ids keep 16 bits (found by mutation testing)."""
import os.path as osp

import cv2
import numpy as np
import pytest

from clustseg.datasets import load_bsds_segmentations


@pytest.fixture(scope='module')
def tool(load_script):
    return load_script('tools/dataset_converters/bsds_to_folder.py')


@pytest.fixture(scope='module')
def bsds_root(repo_root):
    return str(repo_root / 'tests' / 'data' / 'bsds500')


def test_default_layout_writes_the_first_annotator(tool, bsds_root, tmp_path):
    mat = load_bsds_segmentations(osp.join(bsds_root, 'groundTruth/val/101087.mat'))
    assert not np.array_equal(mat[0], mat[-1])  # the file tells first and last apart
    tool.main([bsds_root, str(tmp_path), '--splits', 'val', '--ids', '101087'])
    png = cv2.imread(str(tmp_path / 'val' / 'labels' / '101087.png'), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, mat[0])


def test_region_ids_beyond_8_bits_survive_and_beyond_16_bits_are_refused(tool, bsds_root,
                                                                          tmp_path):
    big = np.array([[[0, 255, 256], [300, 4097, 65535]]], np.int64)
    tool.convert_split(bsds_root, 'val', str(tmp_path / 'a'), ids=['101087'],
                       reader=lambda path: big)
    png = cv2.imread(str(tmp_path / 'a' / 'labels' / '101087.png'), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, big[0])
    for bad in (65536, -1):
        with pytest.raises(ValueError, match='do not fit uint16'):
            tool.convert_split(bsds_root, 'val', str(tmp_path / 'b'), ids=['101087'],
                               reader=lambda path, v=bad: big * 0 + v)
