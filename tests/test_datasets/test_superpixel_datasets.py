"""BSDS500Dataset / SuperpixelFolderDataset on the shipped subsets, and the converter tool."""
import importlib.util
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest

from clustseg.datasets import BSDS500Dataset, SuperpixelFolderDataset, load_bsds_segmentations
from mmseg.registry import DATASETS

TRAIN_IDS = ['100075', '100080', '100098', '103041', '104022', '105019', '105053', '106020',
             '106025', '108041', '108073', '109034']
VAL_IDS = ['101085', '101087', '103070', '105025', '106024', '108005']


@pytest.fixture(scope='module')
def bsds_root(repo_root):
    return str(repo_root / 'tests' / 'data' / 'bsds500')


def _split(name):
    return dict(img_path=f'images/{name}', seg_map_path=f'groundTruth/{name}')


def test_bsds_lengths_and_paths(bsds_root):
    train = BSDS500Dataset(data_root=bsds_root, data_prefix=_split('train'))
    val = BSDS500Dataset(data_root=bsds_root, test_mode=True)  # default prefix: val
    assert len(train) == 12 and len(val) == 6
    assert [train.get_data_info(i)['img_id'] for i in range(12)] == TRAIN_IDS
    assert [val.get_data_info(i)['img_id'] for i in range(6)] == VAL_IDS
    info = val.get_data_info(2)
    assert info['img_path'] == osp.join(bsds_root, 'images', 'val', '103070.jpg')
    assert info['seg_map_path'] == osp.join(bsds_root, 'groundTruth', 'val', '103070.mat')
    assert info['seg_fields'] == []
    assert val.metainfo['dataset_name'] == 'BSDS500'
    assert val.metainfo['label_type'] == 'region_ids'
    # both orientations are in the subset
    shapes = {cv2.imread(train.get_data_info(i)['img_path']).shape[:2] for i in range(12)}
    assert shapes == {(321, 481), (481, 321)}


def test_bsds_built_from_registry(bsds_root):
    ds = DATASETS.build(dict(type='BSDS500Dataset', data_root=bsds_root,
                             data_prefix=_split('train')))
    assert isinstance(ds, BSDS500Dataset) and len(ds) == 12


def test_bsds_missing_mat_names_file(bsds_root, tmp_path):
    for sub in ('images/val', 'groundTruth/val'):
        (tmp_path / sub).mkdir(parents=True)
    for i in ('101085', '101087'):
        shutil.copy(osp.join(bsds_root, 'images/val', i + '.jpg'), tmp_path / 'images/val')
    shutil.copy(osp.join(bsds_root, 'groundTruth/val/101085.mat'), tmp_path / 'groundTruth/val')
    with pytest.raises(FileNotFoundError, match=r'groundTruth/val/101087\.mat'):
        BSDS500Dataset(data_root=str(tmp_path))


def test_bsds_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='images/val'):
        BSDS500Dataset(data_root=str(tmp_path))
    (tmp_path / 'images/val').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=re.escape(
            f'no *.jpg images in BSDS500 image folder {tmp_path / "images/val"} (data_root + '
            "data_prefix.img_path, img_suffix='.jpg')")):
        BSDS500Dataset(data_root=str(tmp_path))
    with pytest.raises(KeyError, match='seg_map_path'):
        BSDS500Dataset(data_root=str(tmp_path), data_prefix=dict(img_path='images/val'))


def test_bsds_test_split_and_ann_file(bsds_root, tmp_path):
    for sub in ('images/test', 'groundTruth/test'):
        (tmp_path / sub).mkdir(parents=True)
    for i in ('105025', '101087'):
        shutil.copy(osp.join(bsds_root, 'images/val', i + '.jpg'), tmp_path / 'images/test')
        shutil.copy(osp.join(bsds_root, 'groundTruth/val', i + '.mat'),
                    tmp_path / 'groundTruth/test')
    ds = BSDS500Dataset(data_root=str(tmp_path), data_prefix=_split('test'), test_mode=True)
    assert [ds.get_data_info(i)['img_id'] for i in range(2)] == ['101087', '105025']
    (tmp_path / 'test.txt').write_text('105025\n\n# comment\n')
    ds = BSDS500Dataset(data_root=str(tmp_path), data_prefix=_split('test'),
                        ann_file='test.txt')
    assert len(ds) == 1 and ds.get_data_info(0)['img_id'] == '105025'
    (tmp_path / 'bad.txt').write_text('999\n')
    with pytest.raises(FileNotFoundError, match=r'999\.jpg'):
        BSDS500Dataset(data_root=str(tmp_path), data_prefix=_split('test'), ann_file='bad.txt')


def test_folder_dataset_sample(repo_root):
    root = repo_root / 'tests' / 'data' / 'superpixel_folder'
    ds = SuperpixelFolderDataset(data_root=str(root),
                                 data_prefix=dict(img_path='images', seg_map_path='labels'))
    assert len(ds) == 2
    info = ds.get_data_info(0)
    assert info['img_id'] == '101085'
    assert info['seg_map_path'] == str(root / 'labels' / '101085.png')
    label = cv2.imread(info['seg_map_path'], cv2.IMREAD_UNCHANGED)
    assert label.dtype == np.uint16
    mat = load_bsds_segmentations(str(repo_root / 'tests/data/bsds500/groundTruth/val/101085.mat'))
    np.testing.assert_array_equal(label.astype(np.int64), mat[0])


def _write_label(path, value, shape=(4, 5)):
    cv2.imwrite(str(path), np.full(shape, value, np.uint16))


def test_folder_dataset_annotator_rule(tmp_path):
    (tmp_path / 'img').mkdir()
    (tmp_path / 'lbl').mkdir()
    for i in ('a', 'a_1', 'b', 'c'):
        cv2.imwrite(str(tmp_path / 'img' / f'{i}.jpg'), np.zeros((4, 5, 3), np.uint8))
    _write_label(tmp_path / 'lbl' / 'a_1.png', 1)  # belongs to image a_1, not annotator 1 of a
    _write_label(tmp_path / 'lbl' / 'a_0.png', 2)
    _write_label(tmp_path / 'lbl' / 'b_10.png', 3)
    _write_label(tmp_path / 'lbl' / 'b_2.png', 4)
    _write_label(tmp_path / 'lbl' / 'c.png', 5)
    _write_label(tmp_path / 'lbl' / 'c_0.png', 6)  # ignored: c.png takes precedence
    ds = SuperpixelFolderDataset(data_root=str(tmp_path),
                                 data_prefix=dict(img_path='img', seg_map_path='lbl'))
    got = {ds.get_data_info(i)['img_id']: ds.get_data_info(i)['seg_map_path']
           for i in range(len(ds))}
    lbl = str(tmp_path / 'lbl')
    assert got == {'a': osp.join(lbl, 'a_0.png'), 'a_1': osp.join(lbl, 'a_1.png'),
                   'b': [osp.join(lbl, 'b_2.png'), osp.join(lbl, 'b_10.png')],
                   'c': osp.join(lbl, 'c.png')}
    (tmp_path / 'lbl' / 'c.png').unlink()
    (tmp_path / 'lbl' / 'c_0.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'lbl/c\.png'):
        SuperpixelFolderDataset(data_root=str(tmp_path),
                                data_prefix=dict(img_path='img', seg_map_path='lbl'))


def _converter(repo_root):
    path = repo_root / 'tools' / 'dataset_converters' / 'bsds_to_folder.py'
    spec = importlib.util.spec_from_file_location('bsds_to_folder', str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_converter_all_annotators(repo_root, bsds_root, tmp_path):
    tool = _converter(repo_root)
    tool.main([bsds_root, str(tmp_path), '--splits', 'val', '--ids', '101087',
               '--annotators', 'all'])
    names = sorted(p.name for p in (tmp_path / 'val' / 'labels').iterdir())
    mat = load_bsds_segmentations(osp.join(bsds_root, 'groundTruth/val/101087.mat'))
    assert names == [f'101087_{k}.png' for k in range(mat.shape[0])]
    ds = SuperpixelFolderDataset(data_root=str(tmp_path / 'val'))
    paths = ds.get_data_info(0)['seg_map_path']
    assert len(paths) == mat.shape[0]
    for k, p in enumerate(paths):
        np.testing.assert_array_equal(cv2.imread(p, cv2.IMREAD_UNCHANGED), mat[k])
    with pytest.raises(ValueError, match='no-split-dir'):
        tool.main([bsds_root, str(tmp_path), '--no-split-dir'])


def test_converter_rerun_replaces_an_earlier_layout(repo_root, bsds_root, tmp_path, capsys):
    """A first-annotator conversion over an all-annotator one (and the reverse) used to keep
    the other layout's files, and the dataset read <id>.png over <id>_<k>.png."""
    tool = _converter(repo_root)
    val = tmp_path / 'val'
    tool.main([bsds_root, str(tmp_path), '--splits', 'val', '--ids', '101087', '101085'])
    tool.main([bsds_root, str(tmp_path), '--splits', 'val', '--ids', '101087',
               '--annotators', 'all'])
    assert 'removed 3 file(s) of an earlier conversion' in capsys.readouterr().out
    mat = load_bsds_segmentations(osp.join(bsds_root, 'groundTruth/val/101087.mat'))
    assert sorted(p.name for p in (val / 'labels').iterdir()) == [
        f'101087_{k}.png' for k in range(mat.shape[0])]
    assert sorted(p.name for p in (val / 'images').iterdir()) == ['101087.jpg']
    ds = SuperpixelFolderDataset(data_root=str(val))
    assert len(ds) == 1 and len(ds.get_data_info(0)['seg_map_path']) == mat.shape[0]
    tool.main([bsds_root, str(tmp_path), '--splits', 'val', '--ids', '101087'])
    assert sorted(p.name for p in (val / 'labels').iterdir()) == ['101087.png']


def test_annotators_of_different_sizes_are_an_error_naming_the_file(tmp_path):
    """A BSDS .mat whose annotators' maps differ in size (a corrupt or hand-edited file) is
    refused naming the file, not stacked into a wrong array."""
    import scipy.io

    from clustseg.datasets import BadInputError
    gt = np.empty((1, 2), dtype=object)
    for k, shape in enumerate([(4, 6), (6, 4)]):
        entry = np.empty((1, 1), dtype=[('Segmentation', object), ('Boundaries', object)])
        entry[0, 0] = (np.ones(shape, dtype=np.uint16), np.zeros(shape, dtype=np.uint8))
        gt[0, k] = entry
    path = str(tmp_path / 'bad.mat')
    scipy.io.savemat(path, {'groundTruth': gt})
    with pytest.raises(BadInputError, match=r'annotator 1 Segmentation is \(6, 4\) but '
                       r'annotator 0 is \(4, 6\)') as info:
        load_bsds_segmentations(path)
    assert path in str(info.value)
