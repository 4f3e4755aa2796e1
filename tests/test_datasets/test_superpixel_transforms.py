"""Loading / geometric / packing transforms for region-id label maps and the dataset configs."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose

from clustseg.datasets import BSDS500Dataset, load_bsds_segmentations
from clustseg.datasets.transforms import (LoadSuperpixelAnnotations, PackSuperpixelInputs,
                                          SuperpixelRandomCrop, SuperpixelRandomResize,
                                          resize_labels_nearest)
from mmseg.registry import TRANSFORMS

MAT = 'tests/data/bsds500/groundTruth/val/101085.mat'  # 5 annotators, 481 x 321
IMG = 'tests/data/bsds500/images/val/101085.jpg'


@pytest.fixture
def sample(repo_root):
    return dict(img_path=str(repo_root / IMG), seg_map_path=str(repo_root / MAT), seg_fields=[])


def _load(results, **kwargs):
    return LoadSuperpixelAnnotations(**kwargs)(copy.deepcopy(results))


def test_annotator_modes(sample, repo_root):
    segs = load_bsds_segmentations(str(repo_root / MAT))
    out = _load(sample, annotator='first')
    assert out['gt_seg_map'].dtype == np.int64 and out['gt_seg_map'].shape == (481, 321)
    np.testing.assert_array_equal(out['gt_seg_map'], segs[0])
    assert out['gt_seg_maps'].shape == (5, 481, 321) and out['gt_seg_maps'].dtype == np.int64
    assert out['seg_fields'] == ['gt_seg_map'] and out['num_annotators'] == 5
    out = _load(sample, annotator=3, with_all=False)
    np.testing.assert_array_equal(out['gt_seg_map'], segs[3])
    assert 'gt_seg_maps' not in out
    np.testing.assert_array_equal(_load(sample, annotator=-1)['gt_seg_map'], segs[4])
    np.testing.assert_array_equal(_load(sample, annotator='all')['gt_seg_map'], segs[0])
    with pytest.raises(IndexError, match='101085.mat has 5 annotator'):
        _load(sample, annotator=5)
    with pytest.raises(ValueError, match='annotator'):
        LoadSuperpixelAnnotations(annotator='last')
    with pytest.raises(ValueError, match='with_all'):
        LoadSuperpixelAnnotations(annotator='all', with_all=False)


def test_random_annotator_uses_numpy_seed(sample, repo_root):
    segs = load_bsds_segmentations(str(repo_root / MAT))
    t = LoadSuperpixelAnnotations(annotator='random', with_all=False)

    def draws():
        picked = []
        for _ in range(12):
            out = t(copy.deepcopy(sample))
            k = out['annotator_idx']
            np.testing.assert_array_equal(out['gt_seg_map'], segs[k])
            picked.append(k)
        return picked

    np.random.seed(3)
    first = draws()
    np.random.seed(3)
    assert draws() == first
    assert len(set(first)) > 1


def test_png_labels_uint16_and_list(tmp_path):
    lab = np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000  # up to 57000 > 255
    cv2.imwrite(str(tmp_path / 'x_0.png'), lab)
    cv2.imwrite(str(tmp_path / 'x_1.png'), lab[::-1].copy())
    res = dict(seg_map_path=[str(tmp_path / 'x_0.png'), str(tmp_path / 'x_1.png')])
    out = LoadSuperpixelAnnotations(annotator='first')(res)
    assert out['gt_seg_maps'].shape == (2, 4, 5) and out['gt_seg_maps'].dtype == np.int64
    np.testing.assert_array_equal(out['gt_seg_maps'][1], lab[::-1])
    assert out['gt_seg_map'].max() == 57000
    # colour-coded labels: one id per colour
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[:, 2:] = (10, 20, 30)
    cv2.imwrite(str(tmp_path / 'c.png'), rgb)
    out = LoadSuperpixelAnnotations(annotator='first')(dict(seg_map_path=str(tmp_path / 'c.png')))
    assert len(np.unique(out['gt_seg_map'])) == 2
    cv2.imwrite(str(tmp_path / 'y.png'), np.zeros((3, 5), np.uint8))
    bad = dict(seg_map_path=[str(tmp_path / 'x_0.png'), str(tmp_path / 'y.png')])
    with pytest.raises(ValueError, match='y.png'):
        LoadSuperpixelAnnotations()(bad)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        LoadSuperpixelAnnotations()(dict(seg_map_path=str(tmp_path / 'missing.png')))
    # label size must match the loaded image
    with pytest.raises(ValueError, match='x_0.png'):
        LoadSuperpixelAnnotations()(dict(seg_map_path=str(tmp_path / 'x_0.png'),
                                         img=np.zeros((5, 5, 3), np.uint8)))


def _big_label_sample(h=40, w=60):
    """Image + int64 labels 300..303 in four quadrant-like blocks (not symmetric)."""
    seg = np.full((h, w), 300, np.int64)
    seg[:, w // 3:] = 301
    seg[h // 4:, :] = 302
    seg[h // 4:, w // 2:] = 303
    img = np.random.RandomState(0).randint(0, 255, (h, w, 3)).astype(np.uint8)
    return dict(img=img, img_shape=(h, w), ori_shape=(h, w), gt_seg_map=seg.copy(),
                seg_fields=['gt_seg_map']), seg


@pytest.mark.parametrize('flip_type', ['RandomFlip', 'mmcv.RandomFlip'])
@pytest.mark.parametrize('direction,expected', [
    ('horizontal', lambda s: s[:, ::-1]), ('vertical', lambda s: s[::-1]),
    ('diagonal', lambda s: s[::-1, ::-1])])
def test_flips_keep_big_int64_labels(flip_type, direction, expected):
    results, seg = _big_label_sample()
    flip = TRANSFORMS.build(dict(type=flip_type, prob=1.0, direction=direction))
    out = flip(results)
    assert out['gt_seg_map'].dtype == np.int64
    np.testing.assert_array_equal(out['gt_seg_map'], expected(seg))
    assert out['flip_direction'] == direction


def test_combined_flip_is_two_independent_half_flips():
    flip = TRANSFORMS.build(dict(type='RandomFlip', prob=[0.25, 0.25, 0.25],
                                 direction=['horizontal', 'vertical', 'diagonal']))
    np.random.seed(0)
    counts = {}
    for _ in range(800):
        out = flip(dict(img=np.zeros((2, 2, 3), np.uint8)))
        counts[out['flip_direction']] = counts.get(out['flip_direction'], 0) + 1
    assert set(counts) == {None, 'horizontal', 'vertical', 'diagonal'}
    assert all(150 < c < 250 for c in counts.values()), counts


def test_mmcv_random_resize_turns_int64_into_int32():
    """Why SuperpixelRandomResize exists: cv2 resizes int64 as int32 (values still kept)."""
    results, _ = _big_label_sample()
    rr = TRANSFORMS.build(dict(type='RandomResize', scale=(60, 40), ratio_range=(1.5, 1.5),
                               keep_ratio=True))
    out = rr(results)
    assert out['gt_seg_map'].shape == (60, 90)
    assert set(np.unique(out['gt_seg_map'])) == {300, 301, 302, 303}
    assert out['gt_seg_map'].dtype == np.int32


@pytest.mark.parametrize('ratio', [0.5, 0.73, 1.0, 2.0])
def test_superpixel_random_resize(ratio):
    results, seg = _big_label_sample()
    out = SuperpixelRandomResize(ratio_range=(ratio, ratio))(results)
    h, w = int(round(40 * ratio)), int(round(60 * ratio))
    assert out['img'].shape == (h, w, 3) and out['img'].dtype == np.uint8
    assert out['gt_seg_map'].shape == (h, w) and out['gt_seg_map'].dtype == np.int64
    assert out['img_shape'] == (h, w)
    assert set(np.unique(out['gt_seg_map'])) == {300, 301, 302, 303}
    # same sampling as cv2 nearest (checked on int32, which cv2 supports)
    ref = cv2.resize(seg.astype(np.int32), (w, h), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(out['gt_seg_map'], ref)
    big = np.array([[2**40, 1], [2, 3]], np.int64)  # beyond int32: kept exactly
    assert resize_labels_nearest(big, (4, 4))[0, 0] == 2**40


def test_resize_labels_nearest_matches_cv2():
    rng = np.random.RandomState(0)
    for _ in range(200):
        h, w = rng.randint(1, 60, 2)
        out_h, out_w = rng.randint(1, 130, 2)
        lab = rng.randint(0, 1000, (h, w)).astype(np.int32)
        ref = cv2.resize(lab, (int(out_w), int(out_h)), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(resize_labels_nearest(lab, (out_h, out_w)), ref)


def test_superpixel_random_resize_ratio_range_and_seed():
    t = SuperpixelRandomResize(ratio_range=(0.5, 2.0))
    np.random.seed(1)
    sizes = [t(_big_label_sample()[0])['img_shape'] for _ in range(20)]
    np.random.seed(1)
    assert sizes == [t(_big_label_sample()[0])['img_shape'] for _ in range(20)]
    assert all(20 <= h <= 80 and 30 <= w <= 120 for h, w in sizes)
    with pytest.raises(ValueError, match='ratio_range'):
        SuperpixelRandomResize(ratio_range=(2.0, 0.5))


def test_superpixel_random_crop_crops_and_pads():
    results, seg = _big_label_sample()
    np.random.seed(0)
    out = SuperpixelRandomCrop(crop_size=(30, 30))(copy.deepcopy(results))
    y1, y2, x1, x2 = out['crop_bbox']
    assert (y2 - y1, x2 - x1) == (30, 30)
    np.testing.assert_array_equal(out['gt_seg_map'], seg[y1:y2, x1:x2])
    np.testing.assert_array_equal(out['img'], results['img'][y1:y2, x1:x2])
    # larger than the input in height only: crop width, pad height with img 0 / label -1
    out = SuperpixelRandomCrop(crop_size=(50, 32))(copy.deepcopy(results))
    assert out['img'].shape == (50, 32, 3) and out['gt_seg_map'].shape == (50, 32)
    assert out['gt_seg_map'].dtype == np.int64
    assert (out['gt_seg_map'][40:] == -1).all() and (out['gt_seg_map'][:40] >= 300).all()
    assert (out['img'][40:] == 0).all()
    assert out['img_shape'] == out['pad_shape'] == (50, 32)
    uint8 = dict(img=np.zeros((4, 4, 3), np.uint8), gt_seg_map=np.zeros((4, 4), np.uint8),
                 seg_fields=['gt_seg_map'])
    with pytest.raises(ValueError, match='gt_seg_map'):
        SuperpixelRandomCrop(crop_size=8)(uint8)


def test_mmseg_random_crop_does_not_pad():
    """mmseg RandomCrop keeps int64 labels but returns a smaller map for small inputs."""
    results, seg = _big_label_sample()
    out = TRANSFORMS.build(dict(type='mmseg.RandomCrop', crop_size=(30, 100),
                                cat_max_ratio=1.0))(results)
    assert out['gt_seg_map'].shape == (30, 60) and out['gt_seg_map'].dtype == np.int64


def test_pack_superpixel_inputs(sample):
    out = _load(sample, annotator='first')
    out['img'] = cv2.imread(sample['img_path'])
    out['img_shape'] = out['ori_shape'] = out['img'].shape[:2]
    out['img'] = out['img'][:, ::-1]  # non-contiguous view
    packed = PackSuperpixelInputs()(out)
    inputs, ds = packed['inputs'], packed['data_samples']
    assert inputs.shape == (3, 481, 321) and inputs.dtype == torch.uint8
    assert inputs.is_contiguous()
    assert torch.equal(inputs[:, 0, 0], torch.from_numpy(out['img'][0, 0].copy()))
    assert ds.gt_sem_seg.data.shape == (1, 481, 321) and ds.gt_sem_seg.data.dtype == torch.int64
    assert ds.gt_seg_maps.data.shape == (5, 481, 321)
    assert ds.gt_seg_maps.data.dtype == torch.int64
    assert ds.metainfo['img_path'] == sample['img_path'] and ds.metainfo['num_annotators'] == 5
    # gt_seg_maps left behind by a geometric transform is caught
    out['img'] = out['img'][:100]
    out['gt_seg_map'] = out['gt_seg_map'][:100]
    with pytest.raises(ValueError, match='with_all=False'):
        PackSuperpixelInputs()(out)


def _config(repo_root, name):
    return Config.fromfile(str(repo_root / 'configs' / '_base_' / 'datasets' / name))


def _dataset(repo_root, loader_cfg, data_root='tests/data/bsds500'):
    cfg = copy.deepcopy(loader_cfg['dataset'])
    cfg.pop('type')
    cfg['data_root'] = str(repo_root / data_root)
    cfg['pipeline'] = []
    return BSDS500Dataset(**cfg)


def test_embedded_train_pipeline(repo_root):
    cfg = _config(repo_root, 'bsds500_embedded.py')
    assert cfg.train_dataloader.dataset.data_root == 'tests/data/bsds500'
    assert osp.isdir(repo_root / cfg.train_dataloader.dataset.data_root)
    ds = _dataset(repo_root, cfg.train_dataloader)
    assert len(ds) == 12 and len(_dataset(repo_root, cfg.val_dataloader)) == 6
    pipeline = Compose(cfg.train_pipeline)
    assert type(pipeline.transforms[-1]).__name__ == 'PackSuperpixelInputs'
    np.random.seed(0)
    padded_seen = False
    for i in range(len(ds)):
        results = ds.get_data_info(i)
        for t in pipeline.transforms[:-1]:
            results = t(results)
        y1, y2, x1, x2 = results['crop_bbox']
        packed = pipeline.transforms[-1](results)
        assert packed['inputs'].shape == (3, 192, 192) and packed['inputs'].dtype == torch.uint8
        seg = packed['data_samples'].gt_sem_seg.data
        assert seg.shape == (1, 192, 192) and seg.dtype == torch.int64
        # -1 exactly in the padded area (BSDS ids start at 1)
        pad = torch.ones(192, 192, dtype=torch.bool)
        pad[:y2 - y1, :x2 - x1] = False
        assert torch.equal(seg[0] == -1, pad)
        assert (packed['inputs'][:, pad] == 0).all()
        padded_seen |= bool(pad.any())
    assert padded_seen


def test_full_config_and_test_pipeline(repo_root):
    cfg = _config(repo_root, 'bsds500_superpixel.py')
    assert cfg.train_batch_size == 16 and cfg.train_dataloader.batch_size == 16
    assert cfg.train_dataloader.num_workers == 4
    assert cfg.train_dataloader.sampler.type == 'ResumableInfiniteSampler'
    assert cfg.data_root == 'data/bsds500'
    assert cfg.test_dataloader.dataset.data_prefix.img_path == 'images/test'
    assert cfg.val_evaluator.type == 'SuperpixelMetric'
    # full train pipeline (480 crop) on the shipped subset: BSDS images are padded
    ds = _dataset(repo_root, cfg.train_dataloader)
    np.random.seed(0)
    packed = Compose(cfg.train_pipeline)(ds.get_data_info(1))
    assert packed['inputs'].shape == (3, 480, 480)
    # test pipeline: original size, all annotators
    val = _dataset(repo_root, cfg.val_dataloader)
    pipeline = Compose(cfg.test_pipeline)
    for i in (0, 2):  # portrait 101085, landscape 103070
        info = val.get_data_info(i)
        packed = pipeline(info)
        h, w = cv2.imread(info['img_path']).shape[:2]
        assert packed['inputs'].shape == (3, h, w)
        ds_ = packed['data_samples']
        segs = load_bsds_segmentations(info['seg_map_path'])
        assert torch.equal(ds_.gt_seg_maps.data, torch.from_numpy(segs))
        assert torch.equal(ds_.gt_sem_seg.data[0], torch.from_numpy(segs[0]))
        assert ds_.metainfo['ori_shape'] == (h, w) == ds_.metainfo['img_shape']
