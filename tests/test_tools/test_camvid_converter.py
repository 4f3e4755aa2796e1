"""tools/dataset_converters/camvid.py on the 4 real CamVid samples of tests/data/camvid: the
semantic labels (void -> 255) read by ClustSegCamVidDataset, and the derived COCO panoptic
version (things = 8-connected components) read by ClustSegCocoPanopticDataset, mmdet's
loader and the PQ metric."""
import filecmp
import json
import os
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import PackDetInputs
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from PIL import Image
from skimage import measure

from clustseg.datasets import (CAMVID_CLASSES, CAMVID_STUFF_CLASSES, CAMVID_THING_CLASSES,
                               BadInputError, ClustSegCamVidDataset, ClustSegCocoPanopticDataset,
                               LoadPanopticAnnotationsChecked, MissingInputError)
from clustseg.datasets.transforms import LoadImageChecked, LoadSemanticAnnotationsChecked
from clustseg.evaluation.metrics import ClustSegCocoPanopticMetric
from clustseg.registry import DATASETS

SPLITS = {'train': ['0001TP_006840', '0006R0_f02940'], 'val': ['0016E5_07997'],
          'test': ['Seq05VD_f03510']}
PAN_CLASSES = CAMVID_THING_CLASSES + CAMVID_STUFF_CLASSES
PAN_META = dict(classes=PAN_CLASSES, thing_classes=CAMVID_THING_CLASSES,
                stuff_classes=CAMVID_STUFF_CLASSES)
THINGS = [CAMVID_CLASSES.index(c) for c in CAMVID_THING_CLASSES]


@pytest.fixture(scope='module')
def conv(load_script):
    return load_script('tools/dataset_converters/camvid.py')


@pytest.fixture(scope='module')
def src(repo_root):
    return repo_root / 'tests' / 'data' / 'camvid'


@pytest.fixture(scope='module')
def converted(conv, src, tmp_path_factory):
    out = tmp_path_factory.mktemp('camvid')
    stats = conv.main([str(src), str(out)])
    return out, stats


def _read(path):
    return np.array(Image.open(path))


def _rgb2id(rgb):
    rgb = rgb.astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 ** 2 * rgb[..., 2]


def test_class_tables():
    assert len(CAMVID_CLASSES) == 11 and CAMVID_CLASSES[0] == 'Sky'
    assert CAMVID_CLASSES[8:] == ('Car', 'Pedestrian', 'Bicyclist')
    assert CAMVID_STUFF_CLASSES == CAMVID_CLASSES[:8]
    assert len(ClustSegCamVidDataset.METAINFO['palette']) == 11


def test_convert_label_maps_void_and_refuses_other_values(conv):
    arr = np.array([[0, 5, 10], [11, 11, 3]], np.uint8)
    out = conv.convert_label(arr, 'x.png')
    assert out.dtype == np.uint8 and out.tolist() == [[0, 5, 10], [255, 255, 3]]
    with pytest.raises(BadInputError, match=r'^a/b\.png: 1 pixel\(s\) with value\(s\) 12;'):
        conv.convert_label(np.array([[0, 12]], np.uint8), 'a/b.png')
    with pytest.raises(BadInputError, match=r'^c\.png: .*single-channel'):
        conv.convert_label(np.zeros((2, 2, 3), np.uint8), 'c.png')


def test_panoptic_segments_on_a_small_map(conv):
    car, ped, road, sky = (CAMVID_CLASSES.index(c) for c in ('Car', 'Pedestrian', 'Road', 'Sky'))
    label = np.full((12, 12), 255, np.uint8)
    label[:, :2] = sky                   # 24 px of stuff
    label[0, 11] = sky                   # a second, 1-px sky region: the same segment
    label[10:, 10:] = road               # 4 px of stuff: kept
    label[0:4, 3:7] = car                # 16 px ...
    label[4:8, 7:11] = car               # ... touching diagonally: one instance of 32 px
    label[9:12, 7:10] = car              # 9 px, apart: void
    label[6:10, 2:6] = ped               # 16 px: kept
    ids, segs = conv.panoptic_segments(label)
    by_cat = Counter(s['category_id'] for s in segs)
    assert by_cat == {sky + 1: 1, road + 1: 1, car + 1: 1, ped + 1: 1}
    assert [s['id'] for s in segs] == [1, 2, 3, 4]  # in class order: Sky, Road, Car, Ped
    seg = {s['category_id']: s for s in segs}
    assert seg[sky + 1]['area'] == 25 and seg[road + 1]['area'] == 4
    assert seg[car + 1]['area'] == 32 and seg[car + 1]['bbox'] == [3, 0, 8, 8]
    assert seg[ped + 1]['area'] == 16 and seg[ped + 1]['bbox'] == [2, 6, 4, 4]
    assert np.array_equal(ids == seg[sky + 1]['id'], label == sky)
    assert (ids[9:12, 7:10] == 0).all() and (ids[label == 255] == 0).all()
    assert all(s['iscrowd'] == 0 for s in segs)
    # the threshold is a parameter: with 9 the small car is an instance
    _, segs = conv.panoptic_segments(label, min_thing_area=9)
    assert Counter(s['category_id'] for s in segs)[car + 1] == 2


def test_outputs_and_semantic_labels(converted, src):
    out, stats = converted
    for split, stems in SPLITS.items():
        assert stats[split]['images'] == len(stems)
        assert sorted(os.listdir(out / 'images' / split)) == [s + '.png' for s in stems]
        for stem in stems:
            assert filecmp.cmp(src / split / f'{stem}.png', out / 'images' / split / f'{stem}.png',
                               shallow=False)
            raw = _read(src / f'{split}annot' / f'{stem}.png')
            label = _read(out / 'labels' / split / f'{stem}.png')
            assert label.dtype == np.uint8 and label.shape == raw.shape == (360, 480)
            assert set(np.unique(label).tolist()) <= set(range(11)) | {255}
            assert np.array_equal(label == 255, raw == 11) and (raw == 11).any()
            assert np.array_equal(label[raw != 11], raw[raw != 11])
    # the train samples hold Car and Pedestrian pixels (as tests/data/camvid/README.md says)
    for stem in SPLITS['train']:
        label = _read(out / 'labels' / 'train' / f'{stem}.png')
        assert (label == 8).any() and (label == 9).any()


def test_panoptic_pngs_match_segments_info(converted):
    out, stats = converted
    seen = Counter()
    for split, stems in SPLITS.items():
        js = json.loads((out / 'annotations' / f'panoptic_{split}.json').read_text())
        assert [i['id'] for i in js['images']] == list(range(1, len(stems) + 1))
        assert [i['file_name'] for i in js['images']] == [s + '.png' for s in stems]
        assert [a['file_name'] for a in js['annotations']] == [s + '.png' for s in stems]
        cats = {c['id']: c for c in js['categories']}
        assert [c['name'] for c in js['categories']] == list(PAN_CLASSES)
        assert {i: c['name'] for i, c in cats.items()} == dict(enumerate(CAMVID_CLASSES, 1))
        assert {c['name'] for c in cats.values() if c['isthing']} == set(CAMVID_THING_CLASSES)
        things_in_split = Counter()
        for img, ann in zip(js['images'], js['annotations']):
            assert ann['image_id'] == img['id']
            label = _read(out / 'labels' / split / img['file_name'])
            rgb = _read(out / 'panoptic' / split / img['file_name'])
            assert rgb.shape == (img['height'], img['width'], 3) == (360, 480, 3)
            ids = _rgb2id(rgb)
            segs = {s['id']: s for s in ann['segments_info']}
            assert len(segs) == len(ann['segments_info'])
            assert set(np.unique(ids).tolist()) - {0} == set(segs)
            for sid, s in segs.items():
                mask = ids == sid
                ys, xs = np.nonzero(mask)
                assert s['area'] == mask.sum() and s['iscrowd'] == 0
                assert s['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                     ys.max() - ys.min() + 1]
                cls = s['category_id'] - 1
                assert (label[mask] == cls).all()
                if cls in THINGS:  # one 8-connected component
                    assert measure.label(mask, connectivity=2).max() == 1
                    things_in_split[CAMVID_CLASSES[cls]] += 1
            small = np.zeros(label.shape, bool)
            for cls in range(11):
                pix = label == cls
                cat_segs = [s for s in segs.values() if s['category_id'] == cls + 1]
                if cls not in THINGS:  # stuff: one segment holding every pixel of the class
                    assert sum(s['area'] for s in cat_segs) == pix.sum()
                    assert len(cat_segs) == int(pix.any())
                    continue
                comps = measure.label(pix, connectivity=2)
                sizes = np.bincount(comps.ravel())[1:]
                # each component of >= 16 px is exactly one segment, the smaller ones void
                assert len(cat_segs) == (sizes >= 16).sum()
                for k in np.flatnonzero(sizes >= 16) + 1:
                    assert len(np.unique(ids[comps == k])) == 1 and ids[comps == k][0] > 0
                for k in np.flatnonzero(sizes < 16) + 1:
                    small |= comps == k
                    seen['small'] += 1
            # void: the label's void and the small thing components, nothing else
            assert np.array_equal(ids == 0, (label == 255) | small)
        assert things_in_split == {k: v for k, v in stats[split]['thing_segments'].items() if v}
        seen.update(things_in_split)
    assert seen == {'Car': 5, 'Pedestrian': 8, 'Bicyclist': 4, 'small': 5}


def _pan_dataset(out, split, pipeline):
    with DefaultScope.overwrite_default_scope('mmdet'):
        return DATASETS.build(dict(
            type='ClustSegCocoPanopticDataset', data_root=str(out),
            ann_file=f'annotations/panoptic_{split}.json',
            data_prefix=dict(img=f'images/{split}/', seg=f'panoptic/{split}/'),
            metainfo=PAN_META, pipeline=pipeline))


def test_panoptic_dataset_and_checked_loader(converted):
    out, _ = converted
    ds = _pan_dataset(out, 'train', [
        dict(type='LoadImageChecked', to_float32=True),
        dict(type='LoadPanopticAnnotationsChecked', with_bbox=True, with_mask=True,
             with_seg=True)])
    assert type(ds) is ClustSegCocoPanopticDataset and len(ds) == 2
    # mmdet numbers the classes in the order of the JSON's categories (matched by name)
    js = json.loads((out / 'annotations' / 'panoptic_train.json').read_text())
    names = {c['id']: c['name'] for c in js['categories']}
    assert [names[i] for i in ds.cat_ids] == list(PAN_CLASSES)
    assert ds.metainfo['classes'] == PAN_CLASSES
    for i, stem in enumerate(SPLITS['train']):
        res = ds[i]
        label = _read(out / 'labels' / 'train' / f'{stem}.png')
        ids = _rgb2id(_read(out / 'panoptic' / 'train' / f'{stem}.png'))
        assert res['img'].shape == (360, 480, 3)
        gt = res['gt_seg_map']
        named = np.array(PAN_CLASSES + ('void',))[np.where(gt == 255, len(PAN_CLASSES), gt)]
        assert np.array_equal(named[ids > 0], np.array(CAMVID_CLASSES)[label[ids > 0]])
        assert (gt[ids == 0] == 255).all()
        labels = res['gt_bboxes_labels'].tolist()
        assert len(res['gt_masks']) == len(labels) == len(res['gt_bboxes'])
        assert {PAN_CLASSES[k] for k in labels} == {'Car', 'Pedestrian'} | (
            {'Bicyclist'} if i == 0 else set())
        assert all(k < len(CAMVID_THING_CLASSES) for k in labels)
        for mask, k in zip(res['gt_masks'].masks, labels):
            assert (label[mask.astype(bool)] == CAMVID_CLASSES.index(PAN_CLASSES[k])).all()


def test_panoptic_ground_truth_scores_pq_100(converted):
    """mmdet's PQ (panopticapi) on the converted JSON and PNGs, ground truth as prediction."""
    out, _ = converted
    ds = _pan_dataset(out, 'val', [LoadImageChecked(), LoadPanopticAnnotationsChecked(),
                                   PackDetInputs()])
    outputs = []
    num_things = len(CAMVID_THING_CLASSES)
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        sem = sample.gt_sem_seg.sem_seg[0].long()
        pan = torch.full_like(sem, len(PAN_CLASSES))
        stuff = (sem >= num_things) & (sem != 255)
        pan[stuff] = sem[stuff]
        masks = sample.gt_instances.masks.to_tensor(torch.bool, 'cpu')
        for k, (lab, mask) in enumerate(zip(sample.gt_instances.labels, masks)):
            pan[mask] = int(lab) + (k + 1) * INSTANCE_OFFSET
        sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
        outputs.append(sample.to_dict())
    metric = ClustSegCocoPanopticMetric(
        ann_file=str(out / 'annotations' / 'panoptic_val.json'),
        seg_prefix=str(out / 'panoptic' / 'val'), nproc=1)
    metric.dataset_meta = ds.metainfo
    metric.process({}, outputs)
    res = metric.compute_metrics(metric.results)
    assert res['PQ'] == pytest.approx(100.0) and res['PQ_th'] == pytest.approx(100.0)


def test_semantic_dataset_reads_the_converted_split(converted):
    out, _ = converted
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(dict(
            type='ClustSegCamVidDataset', data_root=str(out),
            data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
            pipeline=[dict(type='LoadImageChecked'),
                      dict(type='LoadSemanticAnnotationsChecked')]))
    assert type(ds) is ClustSegCamVidDataset and len(ds) == 2
    assert ds.metainfo['classes'] == CAMVID_CLASSES and ds.ignore_index == 255
    for i, stem in enumerate(SPLITS['train']):
        res = ds[i]
        assert res['img_path'].endswith(f'{stem}.png') and res['img'].shape == (360, 480, 3)
        assert np.array_equal(res['gt_seg_map'], _read(out / 'labels' / 'train' / f'{stem}.png'))
    # the checked loader refuses ids outside the 11 classes
    bad = out / 'bad_labels'
    shutil.copytree(out / 'labels' / 'train', bad)
    label = _read(bad / f'{SPLITS["train"][0]}.png')
    label[0, :3] = 11
    Image.fromarray(label).save(bad / f'{SPLITS["train"][0]}.png')
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = ClustSegCamVidDataset(data_root=str(out), data_prefix=dict(
            img_path='images/train', seg_map_path='bad_labels'), pipeline=[])
    info = ds.get_data_info(0)
    with pytest.raises(BadInputError, match='outside the 11 classes'):
        LoadSemanticAnnotationsChecked()(LoadImageChecked()(dict(info, seg_fields=[])))


def test_rerun_overwrites_with_the_same_result(conv, converted, src):
    out, stats = converted
    before = {p: p.read_bytes() for p in out.rglob('*') if p.is_file()
              and 'bad_labels' not in p.parts}
    (out / 'labels' / 'val' / '0016E5_07997.png').write_bytes(b'stale')
    # files an earlier conversion left (other stems) are removed: the datasets list folders
    extra = [out / d / 'train' / 'stale_0001.png' for d in ('images', 'labels', 'panoptic')]
    for p in extra:
        p.write_bytes(b'from an earlier conversion')
    assert conv.convert(str(src), str(out), verbose=False) == stats
    after = {p: p.read_bytes() for p in before}
    assert after == before
    assert not any(p.exists() for p in extra)


def _copy_src(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns('*.md'))
    return dst


def test_bad_label_value_names_the_file(conv, src, tmp_path, capsys):
    bad = _copy_src(src, tmp_path / 'CamVid')
    path = bad / 'valannot' / '0016E5_07997.png'
    label = _read(path)
    label[5, 5] = 12
    Image.fromarray(label).save(path)
    with pytest.raises(BadInputError, match=re.escape(str(path)) + r': 1 pixel\(s\) with '
                       r'value\(s\) 12; CamVid labels are 0\.\.10'):
        conv.convert(str(bad), str(tmp_path / 'out'), verbose=False)
    with pytest.raises(SystemExit, match=re.escape(f'error: {path}: ')):
        conv.main([str(bad), str(tmp_path / 'out')])


def test_missing_folder_and_files_are_named(conv, src, tmp_path):
    bad = _copy_src(src, tmp_path / 'CamVid')
    shutil.rmtree(bad / 'testannot')
    with pytest.raises(MissingInputError, match=re.escape(str(bad / 'testannot')) +
                       ': CamVid folder not found'):
        conv.convert(str(bad), str(tmp_path / 'out'), splits=('test',), verbose=False)
    assert not (tmp_path / 'out').exists()  # nothing written before the check
    os.remove(bad / 'train' / '0006R0_f02940.png')
    with pytest.raises(MissingInputError, match=re.escape(
            str(bad / 'train' / '0006R0_f02940.png')) + ': image of label'):
        conv.convert(str(bad), str(tmp_path / 'out'), splits=('train',), verbose=False)
    with pytest.raises(MissingInputError, match='CamVid source folder not found'):
        conv.convert(str(tmp_path / 'nowhere'), str(tmp_path / 'out'))


def test_label_of_another_size_than_its_image_names_the_file(conv, src, tmp_path):
    bad = _copy_src(src, tmp_path / 'CamVid')
    path = bad / 'valannot' / '0016E5_07997.png'
    label = _read(path)
    Image.fromarray(np.ascontiguousarray(label[:-1])).save(path)  # one row short
    h, w = label.shape
    with pytest.raises(BadInputError, match=re.escape(str(path)) +
                       rf': label map is {h - 1} x {w} '):
        conv.convert(str(bad), str(tmp_path / 'out'), verbose=False)
