"""The semantic bad-input corpus (tests/data/bad/semantic, COCO-Stuff layout): label maps that
are empty, truncated, of another size, colour, or hold ids outside the classes are errors
naming the file; ``skip_bad`` (``tools/test.py --skip-bad``) warns, drops and counts them in
the semantic datasets; the checked loader gives mmseg's labels on the real samples."""
import os.path as osp
import re
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.datasets.transforms import LoadAnnotations
from PIL import Image

from clustseg.datasets import (BadInputError, ClustSegADE20KDataset, ClustSegCOCOStuffDataset,
                               MissingInputError)
from clustseg.datasets.transforms import LoadImageChecked, LoadSemanticAnnotationsChecked
from clustseg.evaluation.metrics import ClustSegIoUMetric
from clustseg.registry import DATASETS, METRICS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CORPUS = str(ROOT / 'tests' / 'data' / 'bad' / 'semantic')
LABELS = osp.join(CORPUS, 'annotations', 'val')
SUFFIX = '_labelTrainIds.png'
# stem -> regex of the reason; the error names annotations/val/<stem>_labelTrainIds.png
BAD = {
    'labelempty': r'empty file \(0 bytes\)',
    'labeltrunc': 'truncated PNG',
    'labelsize': r'label map is 60 x 80 \(H x W\) but its image \S+labelsize\.jpg is 64 x 96',
    'labelrgb': 'label map has 3 channels',
    'labelrange': r'160 pixel\(s\) with value\(s\) 200 \(class id\(s\) 200\) outside the 171 '
                  r'classes \[0, 171\) and not ignore_index 255',
    'nolabel': r'label map not found \(image \S+nolabel\.jpg\)',
}


def _semantic_cfg(name='clustseg_compact_embedded.py'):
    return Config.fromfile(str(ROOT / 'configs' / 'semantic' / name))


def _corpus_dataset(stems=None, tmp_path=None, **kwargs):
    """The embedded COCO-Stuff config's test dataset on the corpus (all, or ``stems``)."""
    ds_cfg = _semantic_cfg().test_dataloader.dataset
    ds_cfg.update(data_root=CORPUS, data_prefix=dict(img_path='images/val',
                                                     seg_map_path='annotations/val'), **kwargs)
    if stems is not None:
        ann = tmp_path / 'split.txt'
        ann.write_text('\n'.join(stems) + '\n')
        ds_cfg.ann_file = str(ann)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return DATASETS.build(ds_cfg)


@pytest.mark.parametrize('name', ['clustseg_compact_embedded.py',
                                  'clustseg_compact_embedded_ade20k.py'])
def test_no_samples_names_the_folder_suffix_and_keys(name, tmp_path):
    """A wrong img_suffix, an empty image folder, an empty ann_file: an error naming where the
    samples were looked for and the config keys (mmengine's own is numpy's "need at least
    one array to concatenate")."""
    ds_cfg = _semantic_cfg(name).test_dataloader.dataset
    folder = osp.join(ds_cfg.data_root, ds_cfg.data_prefix.img_path)
    with DefaultScope.overwrite_default_scope('mmseg'):
        with pytest.raises(FileNotFoundError, match=re.escape(
                f'no *.webp images in {folder} (data_root + data_prefix.img_path, '
                "img_suffix='.webp')")):
            DATASETS.build(dict(ds_cfg, img_suffix='.webp'))
        (tmp_path / 'img').mkdir()
        (tmp_path / 'ann').mkdir()
        with pytest.raises(FileNotFoundError, match=re.escape(
                f': no samples: no *.jpg images in {tmp_path / "img"} '
                '(data_root + data_prefix.img_path')):
            DATASETS.build(dict(ds_cfg, data_root=str(tmp_path),
                                data_prefix=dict(img_path='img', seg_map_path='ann')))
        (tmp_path / 'split.txt').write_text('')
        with pytest.raises(FileNotFoundError, match=re.escape(
                f'no samples: ann_file {tmp_path / "split.txt"} lists none')):
            DATASETS.build(dict(ds_cfg, ann_file=str(tmp_path / 'split.txt')))


def test_corpus_is_complete():
    images = sorted(f[:-4] for f in __import__('os').listdir(osp.join(CORPUS, 'images', 'val')))
    assert images == sorted(['good'] + list(BAD))
    assert not osp.exists(osp.join(LABELS, 'nolabel' + SUFFIX))


@pytest.mark.parametrize('stem', sorted(BAD))
def test_bad_label_is_an_error_naming_the_file(stem, tmp_path):
    path = osp.join(LABELS, stem + SUFFIX)
    with pytest.raises(BadInputError) as info:
        ds = _corpus_dataset(['good', stem], tmp_path)
        assert type(ds) is ClustSegCOCOStuffDataset
        for i in range(len(ds)):
            ds[i]
    err = info.value
    assert err.path == path and str(err).startswith(path + ': ')
    assert re.search(BAD[stem], err.reason), err.reason
    assert isinstance(err, MissingInputError) == (stem == 'nolabel')


def test_skip_bad_warns_drops_and_counts(log_messages):
    ds = _corpus_dataset(skip_bad=True)
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(len(ds))] == \
        ['good.jpg']
    skipped = dict(ds.metainfo['skipped'])
    assert sorted(skipped) == sorted(osp.join(LABELS, s + SUFFIX) for s in BAD)
    for stem, reason in BAD.items():
        path = osp.join(LABELS, stem + SUFFIX)
        assert re.search(reason, skipped[path]), (stem, skipped[path])
        assert any(f'skipping bad input {path}' in m for m in log_messages), stem
    sample = ds[0]['data_samples']
    gt = sample.gt_sem_seg.data
    assert bool(((gt < 171) | (gt == 255)).all()) and bool((gt == 255).any())
    # the config's metric reports the count
    metric = METRICS.build(_semantic_cfg().test_evaluator)
    assert type(metric) is ClustSegIoUMetric
    metric.dataset_meta = ds.metainfo
    sample.set_data(dict(pred_sem_seg=sample.gt_sem_seg))
    metric.process({}, [sample.to_dict()])
    res = metric.compute_metrics(metric.results)
    assert res['num_skipped'] == len(BAD) and res['mIoU'] == pytest.approx(100.0)
    assert any(f'{len(BAD)} bad input(s) skipped' in m for m in log_messages)


def test_ade20k_dataset_skip_bad_and_reduced_ids(tmp_path):
    """ADE20K (reduce_zero_label: file value v -> class v - 1): 151 would be class 150, one
    past the 150 classes; 0 and 255 are ignored."""
    cfg = _semantic_cfg('clustseg_compact_embedded_ade20k.py').test_dataloader.dataset
    cfg.data_root = str(ROOT / cfg.data_root)
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(dict(cfg, skip_bad=True))
    assert type(ds) is ClustSegADE20KDataset and len(ds) == 3 and ds.metainfo['skipped'] == []
    for sub in ('images', 'annotations'):
        (tmp_path / sub).mkdir()
    shutil.copy(osp.join(cfg.data_root, 'images', 'validation', 'ADE_val_00000001.jpg'),
                tmp_path / 'images' / 'x.jpg')
    label = np.array(Image.open(osp.join(cfg.data_root, 'annotations', 'validation',
                                         'ADE_val_00000001.png')))
    assert label.max() <= 150
    label[:2, :3] = 151
    label[2:4, :3] = 255
    Image.fromarray(label).save(tmp_path / 'annotations' / 'x.png')
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(dict(cfg, data_root=str(tmp_path),
                                 data_prefix=dict(img_path='images', seg_map_path='annotations')))
    with pytest.raises(BadInputError, match=re.escape(str(tmp_path / 'annotations' / 'x.png')) +
                       r': 6 pixel\(s\) with value\(s\) 151 \(class id\(s\) 150\) outside the 150 '
                       r'classes \[0, 150\)'):
        ds[0]


@pytest.mark.parametrize('name', ['clustseg_compact_embedded.py',
                                  'clustseg_compact_embedded_ade20k.py'])
def test_checked_loader_matches_mmseg_on_real_data(name):
    cfg = _semantic_cfg(name).test_dataloader.dataset
    cfg.data_root = str(ROOT / cfg.data_root)
    cfg.pipeline = []
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(cfg)
    reduce = 'ade20k' in name
    ours = LoadSemanticAnnotationsChecked(reduce_zero_label=reduce)
    theirs = LoadAnnotations(reduce_zero_label=reduce)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        a = ours(LoadImageChecked()(dict(info, seg_fields=[])))
        b = theirs(dict(info, seg_fields=[]))
        assert a['gt_seg_map'].dtype == b['gt_seg_map'].dtype == np.uint8
        np.testing.assert_array_equal(a['gt_seg_map'], b['gt_seg_map'])
        assert a['seg_fields'] == b['seg_fields'] == ['gt_seg_map']
    # a mismatch between the transform and the dataset is a config error
    with pytest.raises(ValueError, match='reduce_zero_label'):
        LoadSemanticAnnotationsChecked(reduce_zero_label=not reduce)(dict(info, seg_fields=[]))
