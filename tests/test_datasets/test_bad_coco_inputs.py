"""The COCO bad-input corpus (tests/data/bad_coco): errors naming the file, ``skip_bad`` (warn,
drop, count) in the panoptic and instance datasets, and metrics that stay right and report
the count."""
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmdet.datasets.transforms import LoadAnnotations, LoadPanopticAnnotations, PackDetInputs
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.evaluation.metrics import CocoMetric, CocoPanopticMetric
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData, PixelData

from clustseg.datasets import (BadInputError, ClustSegCocoDataset, ClustSegCocoPanopticDataset,
                               LoadPanopticAnnotationsChecked, MissingInputError)
from clustseg.evaluation.metrics import ClustSegCocoMetric, ClustSegCocoPanopticMetric
from clustseg.datasets.transforms import LoadImageChecked
from clustseg.registry import DATASETS, METRICS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CORPUS = str(ROOT / 'tests' / 'data' / 'bad_coco')
PAN_JSON = 'annotations/panoptic_val2017.json'
PAN_SEG = 'annotations/panoptic_val2017/'
INS_JSON = 'annotations/instances_val2017.json'

# Bad samples: stem -> (file the error names, relative to the task folder; regex of the reason).
PANOPTIC_BAD = {
    'badcat': (PAN_JSON, r'image \S+/badcat\.jpg \(id 900001\): annotation \d+ has category_id '
               r'9999, which is not among the 133 categories of this file'),
    'missing': ('val2017/missing.jpg', r'image not found \(image id 900006 of \S+\.json\)'),
    'nopng': (PAN_SEG + 'nopng.png', r'panoptic PNG not found \(image \S+/nopng\.jpg'),
    'extraid': (PAN_SEG + 'extraid.png', r'segment id\(s\) \[7654321\] in this PNG are not in '
                r'the segments_info of image \S+/extraid\.jpg \(id 900002\) in \S+\.json'),
    'pngsize': (PAN_SEG + 'pngsize.png', r'panoptic PNG is 400 x 640 \(H x W\) but its image '
                r'\S+/pngsize\.jpg is 480 x 640'),
    'truncated': ('val2017/truncated.jpg', 'truncated JPEG'),
}
PANOPTIC_GOOD = ['good', 'good2', 'empty']
INSTANCE_BAD = {
    'badcat': (INS_JSON, r'image \S+/badcat\.jpg \(id 900001\): annotation \d+ has category_id '
               r'9999, which is not among the 80 categories of this file'),
    'missing': ('val2017/missing.jpg', r'image not found \(image id 900004 of \S+\.json\)'),
    'truncated': ('val2017/truncated.jpg', 'truncated JPEG'),
}
INSTANCE_GOOD = ['good', 'good2', 'empty']
MISSING = {'missing', 'nopng'}  # MissingInputError (also a FileNotFoundError)


def _pan_pipeline(checked=True):
    load = LoadPanopticAnnotationsChecked() if checked else LoadPanopticAnnotations()
    return [LoadImageChecked(), load, PackDetInputs()]


def _ins_pipeline():
    return [LoadImageChecked(), LoadAnnotations(with_bbox=True, with_mask=True),
            PackDetInputs()]


def _panoptic(root=None, ann_file=None, pipeline=None, **kwargs):
    root = root or osp.join(CORPUS, 'panoptic')
    kwargs.setdefault('test_mode', True)
    return ClustSegCocoPanopticDataset(
        data_root=root, ann_file=ann_file or PAN_JSON,
        data_prefix=dict(img='val2017/', seg=PAN_SEG),
        pipeline=pipeline or _pan_pipeline(), **kwargs)


def _instance(ann_file=None, pipeline=None, **kwargs):
    kwargs.setdefault('test_mode', True)
    return ClustSegCocoDataset(
        data_root=osp.join(CORPUS, 'instance'), ann_file=ann_file or INS_JSON,
        data_prefix=dict(img='val2017/'), pipeline=pipeline or _ins_pipeline(), **kwargs)


def _subset(task, json_name, stems, tmp_path, edit=None):
    """A copy of the corpus JSON of ``task`` with only the images ``stems`` (-> its path)."""
    with open(osp.join(CORPUS, task, json_name)) as f:
        js = json.load(f)
    js['images'] = [im for im in js['images'] if im['file_name'][:-4] in stems]
    ids = {im['id'] for im in js['images']}
    js['annotations'] = [a for a in js['annotations'] if a['image_id'] in ids]
    if edit is not None:
        edit(js)
    path = str(tmp_path / f'{task}_{"_".join(stems)}.json')
    with open(path, 'w') as f:
        json.dump(js, f)
    return path


def _stems(ds, order=False):
    stems = [osp.basename(ds.get_data_info(i)['img_path'])[:-4] for i in range(len(ds))]
    return stems if order else sorted(stems)



def test_corpus_is_small_and_complete():
    total = sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(CORPUS) for f in fs)
    assert total < 1 << 20
    for task, bad, good in (('panoptic', PANOPTIC_BAD, PANOPTIC_GOOD),
                            ('instance', INSTANCE_BAD, INSTANCE_GOOD)):
        json_name = PAN_JSON if task == 'panoptic' else INS_JSON
        with open(osp.join(CORPUS, task, json_name)) as f:
            listed = {im['file_name'][:-4] for im in json.load(f)['images']}
        assert listed == set(bad) | set(good)
        assert not osp.exists(osp.join(CORPUS, task, 'val2017', 'missing.jpg'))


@pytest.mark.parametrize('task,stem', [('panoptic', s) for s in PANOPTIC_BAD] +
                         [('instance', s) for s in INSTANCE_BAD])
def test_bad_sample_is_an_error_naming_the_file(task, stem, tmp_path):
    """Each bad sample alone (next to a good one): a clear error naming the file at fault."""
    bad = PANOPTIC_BAD if task == 'panoptic' else INSTANCE_BAD
    rel, reason = bad[stem]
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON
    ann_file = _subset(task, json_name, ['good', stem], tmp_path)
    expected = ann_file if rel == json_name else osp.join(CORPUS, task, rel)
    make = _panoptic if task == 'panoptic' else _instance
    with pytest.raises(BadInputError) as info:
        ds = make(ann_file=ann_file)
        for i in range(len(ds)):  # content errors surface when the sample is read
            ds[i]
    err = info.value
    assert err.path == expected and str(err).startswith(expected + ': ')
    assert re.search(reason, err.reason), err.reason
    assert isinstance(err, MissingInputError) == (stem in MISSING)
    if rel == json_name:  # a JSON error also names the image
        assert osp.join(CORPUS, task, 'val2017', f'{stem}.jpg') in err.reason


@pytest.mark.parametrize('task', ['panoptic', 'instance'])
def test_skip_bad_warns_drops_and_counts(task, log_messages):
    bad, good = (PANOPTIC_BAD, PANOPTIC_GOOD) if task == 'panoptic' else \
        (INSTANCE_BAD, INSTANCE_GOOD)
    ds = (_panoptic if task == 'panoptic' else _instance)(skip_bad=True)
    assert _stems(ds) == sorted(good)
    skipped = ds.metainfo['skipped']
    assert len(skipped) == len(bad)
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON
    for stem, (rel, reason) in bad.items():
        path = osp.join(CORPUS, task, rel)
        hits = [r for p, r in skipped if p == path and re.search(reason, r)]
        assert len(hits) == 1, (stem, skipped)
        assert any(path in m and hits[0] in m and 'skipping bad input' in m
                   for m in log_messages), stem
        if rel == json_name:
            assert f'{stem}.jpg' in hits[0]
    assert any(f'skipped {len(bad)} bad sample(s), {len(good)} left' in m
               for m in log_messages)
    for i in range(len(ds)):  # what is left loads
        assert ds[i]['inputs'].shape[0] == 3


@pytest.mark.parametrize('task', ['panoptic', 'instance'])
def test_empty_annotation_list(task, tmp_path):
    """Valid (all void / no instances) in evaluation; dropped in training by filter_empty_gt."""
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON
    ann_file = _subset(task, json_name, ['good', 'empty'], tmp_path)
    make = _panoptic if task == 'panoptic' else _instance
    ds = make(ann_file=ann_file)
    assert _stems(ds) == ['empty', 'good']
    empty = ds[_stems(ds, order=True).index('empty')]['data_samples']
    assert len(empty.gt_instances) == 0 and empty.gt_instances.masks.masks.shape[0] == 0
    if task == 'panoptic':
        assert (empty.gt_sem_seg.sem_seg == 255).all()
    train = make(ann_file=ann_file, test_mode=False, filter_cfg=dict(filter_empty_gt=True))
    assert _stems(train) == ['good']
    keep = make(ann_file=ann_file, test_mode=False, filter_cfg=dict(filter_empty_gt=False))
    assert _stems(keep) == ['empty', 'good']
    assert len(keep[_stems(keep, order=True).index('empty')]['data_samples'].gt_instances) == 0
    # a filter that drops every image: an error naming filter_cfg and the file (not numpy's
    # "need at least one array to concatenate" from mmengine's serialisation)
    only_empty = _subset(task, json_name, ['empty'], tmp_path)
    with pytest.raises(ValueError, match=re.escape(
            "filter_cfg={'filter_empty_gt': True} drops all 1 samples of " + only_empty +
            ': change filter_cfg in the config')):
        make(ann_file=only_empty, test_mode=False, filter_cfg=dict(filter_empty_gt=True))


def _drop(path, key):
    """A JSON edit deleting ``key`` from the entry at ``path`` (keys / list indices of the
    JSON object; the top level when empty)."""
    def edit(js):
        entry = js
        for part in path:
            entry = entry[part]
        del entry[key]
    return edit


# (task, entry, key) -> regex of the reason; the error names the JSON
MISSING_KEYS = {
    ('panoptic', (), 'categories'): r"no 'categories' list \(its top-level keys: ",
    ('panoptic', ('annotations', 0), 'segments_info'):
        r"panoptic annotation of image 39769 \('good.png'\) has no 'segments_info' key",
    ('panoptic', ('annotations', 0, 'segments_info', 0), 'iscrowd'):
        r"image \S+/good\.jpg \(id 39769\): segment \d+ of image 39769 has no 'iscrowd' key",
    ('panoptic', ('images', 0), 'height'): r"image entry 39769 \('good.jpg'\) has no 'height' key",
    ('panoptic', ('categories', 0), 'isthing'): r"category 1 has no 'isthing' key",
    ('instance', (), 'categories'): r"no 'categories' list",
    ('instance', ('annotations', 0), 'segmentation'):
        r"image \S+/good\.jpg \(id 547503\): annotation \d+ of image 547503 has no "
        r"'segmentation' key",
    ('instance', ('annotations', 0), 'iscrowd'): r"annotation \d+ of image 547503 has no 'iscrowd'",
    ('instance', ('images', 0), 'height'): r"image entry 547503 \('good.jpg'\) has no 'height'",
    ('instance', ('images', 0), 'width'): r"image entry 547503 \('good.jpg'\) has no 'width'",
}


@pytest.mark.parametrize('task,entry,key', sorted(MISSING_KEYS))
def test_json_without_a_key_is_an_error_naming_the_json_and_key(task, entry, key, tmp_path):
    """Checked when the dataset is built (before any inference), not as a KeyError deep in
    mmdet, a silent default (``iscrowd``) or a failure in the metric after inference."""
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON
    ann_file = _subset(task, json_name, ['good', 'good2'], tmp_path, _drop(entry, key))
    make = _panoptic if task == 'panoptic' else _instance
    with pytest.raises(BadInputError) as info:
        make(ann_file=ann_file)
    err = info.value
    assert err.path == ann_file and str(err).startswith(ann_file + ': ')
    assert re.search(MISSING_KEYS[task, entry, key], err.reason), err.reason


def test_entry_without_a_key_is_skipped_with_skip_bad(tmp_path, log_messages):
    ann_file = _subset('instance', INS_JSON, ['good', 'good2'], tmp_path,
                       _drop(('annotations', 0), 'iscrowd'))
    ds = _instance(ann_file=ann_file, skip_bad=True)
    assert _stems(ds) == ['good2']
    [(path, reason)] = ds.metainfo['skipped']
    assert path == ann_file and "has no 'iscrowd' key" in reason
    # a file mmdet cannot parse is not skippable
    ann_file = _subset('instance', INS_JSON, ['good'], tmp_path, _drop((), 'categories'))
    with pytest.raises(BadInputError, match="no 'categories' list"):
        _instance(ann_file=ann_file, skip_bad=True)


@pytest.mark.parametrize('task', ['instance', 'panoptic'])
def test_image_size_other_than_the_json_is_an_error(task, tmp_path):
    """The JSON's polygons, boxes (and panoptic PNG) are for its height x width: an image
    of another size is an error naming it, when it is read (as the panoptic PNG check)."""
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON

    def edit(js):
        js['images'][0]['height'] = 300
    ann_file = _subset(task, json_name, ['good', 'good2'], tmp_path, edit)
    ds = (_panoptic if task == 'panoptic' else _instance)(ann_file=ann_file)
    img = osp.join(CORPUS, task, 'val2017', 'good.jpg')
    h, w = (480, 640) if task == 'panoptic' else (375, 500)
    with pytest.raises(BadInputError) as info:
        ds[_stems(ds, order=True).index('good')]
    assert info.value.path == img
    assert re.fullmatch(rf'image is {h} x {w} \(H x W\) but the JSON gives 300 x {w} for image '
                        rf'\S+good\.jpg \(id \d+\) in {re.escape(ann_file)}',
                        info.value.reason), info.value.reason
    assert ds[_stems(ds, order=True).index('good2')]['inputs'].shape[0] == 3  # the other loads


def test_checked_panoptic_loader_matches_mmdet_on_real_data():
    root = str(ROOT / 'tests' / 'data' / 'coco_panoptic')
    ours = _panoptic(root=root, pipeline=_pan_pipeline(checked=True))
    theirs = _panoptic(root=root, pipeline=_pan_pipeline(checked=False))
    assert len(ours) == 3
    for i in range(len(ours)):
        a, b = ours[i]['data_samples'], theirs[i]['data_samples']
        assert a.gt_sem_seg.sem_seg.dtype == b.gt_sem_seg.sem_seg.dtype
        assert torch.equal(a.gt_sem_seg.sem_seg, b.gt_sem_seg.sem_seg)
        np.testing.assert_array_equal(a.gt_instances.masks.masks, b.gt_instances.masks.masks)
        assert torch.equal(a.gt_instances.labels, b.gt_instances.labels)
        assert len(a.gt_instances) > 0


def test_panoptic_png_checks(tmp_path):
    """PNG problems the corpus does not hold: JSON segments absent from the PNG, a JSON size
    that is not the PNG's, a truncated PNG; the loader without an image."""
    ds = _panoptic(ann_file=_subset('panoptic', PAN_JSON, ['good'], tmp_path))
    info = ds.get_data_info(0)
    png = info['seg_map_path']
    load = LoadPanopticAnnotationsChecked()
    assert load(dict(info))['gt_seg_map'].shape == (480, 640)  # no image: sizes from the JSON
    with pytest.raises(BadInputError, match=re.escape(png) + r': segment id\(s\) \[12345\] of '
                       'the segments_info of image .*good.jpg.* do not occur in this PNG'):
        load(dict(info, json_segment_ids=info['json_segment_ids'] + [12345]))
    with pytest.raises(BadInputError, match=re.escape(png) + ': panoptic PNG is 480 x 640 '
                       r'\(H x W\) but the JSON gives 481 x 640'):
        load(dict(info, height=481))
    cut = tmp_path / 'cut.png'
    cut.write_bytes(open(png, 'rb').read()[:3000])
    with pytest.raises(BadInputError, match=re.escape(str(cut)) + ': truncated PNG'):
        load(dict(info, seg_map_path=str(cut)))


def test_panoptic_category_not_in_classes_is_a_config_error(tmp_path):
    def edit(js):
        js['categories'].append(dict(id=9998, name='unicorn', isthing=1, supercategory='x'))
        js['annotations'][0]['segments_info'][0]['category_id'] = 9998

    ann_file = _subset('panoptic', PAN_JSON, ['good'], tmp_path, edit)
    with pytest.raises(ValueError, match=r"category 9998 \('unicorn'\) of image .*good.jpg is "
                       'not among the dataset classes') as info:
        _panoptic(ann_file=ann_file, skip_bad=True)  # not skippable: the config is wrong
    assert not isinstance(info.value, BadInputError)


def test_embedded_configs_use_the_checked_datasets():
    for task, cls, n in (('panoptic', ClustSegCocoPanopticDataset, 3),
                         ('instance', ClustSegCocoDataset, 6)):
        cfg = Config.fromfile(str(ROOT / 'configs' / task / 'clustseg_compact_embedded.py'))
        with DefaultScope.overwrite_default_scope('mmdet'):
            for loader in (cfg.train_dataloader, cfg.test_dataloader):
                ds = DATASETS.build(loader.dataset)
                assert type(ds) is cls and len(ds) == n and not ds.skip_bad
                names = [type(t).__name__ for t in ds.pipeline.transforms]
                assert names[0] == 'LoadImageChecked'
                assert ('LoadPanopticAnnotationsChecked' in names) == (task == 'panoptic')
                assert len(ds[0]['data_samples'].gt_instances) > 0  # the pipeline runs
            metric = METRICS.build(_main_metric(cfg))
        assert type(metric) is (ClustSegCocoPanopticMetric if task == 'panoptic'
                                else ClustSegCocoMetric)


def _main_metric(cfg):
    """The PQ metric of a panoptic config (its first evaluator), or the instance one."""
    ev = cfg.test_evaluator
    return ev[0] if isinstance(ev, (list, tuple)) else ev


def _config_on_corpus(task):
    """The embedded config's test dataset and evaluator on the corpus, ``--skip-bad`` on,
    without Resize (the ground truth is then exactly a prediction)."""
    cfg = Config.fromfile(str(ROOT / 'configs' / task / 'clustseg_compact_embedded.py'))
    root = osp.join(CORPUS, task) + '/'
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root = root
    ds_cfg.pipeline = [t for t in ds_cfg.pipeline if t['type'] != 'Resize']
    ds_cfg.skip_bad = True  # what tools/test.py --skip-bad sets
    ev = _main_metric(cfg)
    ev.ann_file = root + (PAN_JSON if task == 'panoptic' else INS_JSON)
    if task == 'panoptic':
        ev.seg_prefix = root + PAN_SEG
        ev.nproc = 1
    cfg.test_evaluator = ev
    return cfg


def _panoptic_gt_outputs(ds):
    num_things = len(ds.metainfo['thing_classes'])
    outputs = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        sem = sample.gt_sem_seg.sem_seg[0].long()
        pan = torch.full_like(sem, len(ds.metainfo['classes']))  # void
        stuff = (sem >= num_things) & (sem != 255)
        pan[stuff] = sem[stuff]
        for k, (label, mask) in enumerate(zip(sample.gt_instances.labels,
                                              sample.gt_instances.masks.to_tensor(
                                                  torch.bool, 'cpu'))):
            pan[mask] = int(label) + (k + 1) * INSTANCE_OFFSET
        sample.pred_panoptic_seg = PixelData(sem_seg=pan[None])
        outputs.append(sample.to_dict())
    return outputs


def _evaluate(metric, ds, outputs):
    metric.dataset_meta = ds.metainfo
    metric.process({}, outputs)
    return metric.compute_metrics(metric.results)


def test_panoptic_metric_on_remaining_images_with_count(tmp_path, log_messages):
    cfg = _config_on_corpus('panoptic')
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(cfg.test_dataloader.dataset)
        outputs = _panoptic_gt_outputs(ds)
        res = _evaluate(METRICS.build(cfg.test_evaluator), ds, outputs)
        assert res['PQ'] == pytest.approx(100.0) and res['num_skipped'] == len(PANOPTIC_BAD)
        assert any('6 bad input(s) skipped, not in the metrics' in m and 'extraid.png' in m
                   for m in log_messages)
        # with outfile_prefix mmdet matches every image of ann_file: the skipped ones fail
        kw = dict(ann_file=cfg.test_evaluator.ann_file, seg_prefix=cfg.test_evaluator.seg_prefix,
                  nproc=1)
        ours = ClustSegCocoPanopticMetric(outfile_prefix=str(tmp_path / 'ours'), **kw)
        res = _evaluate(ours, ds, outputs)
        assert res['PQ'] == pytest.approx(100.0) and res['num_skipped'] == len(PANOPTIC_BAD)
        theirs = CocoPanopticMetric(outfile_prefix=str(tmp_path / 'theirs'), **kw)
        with pytest.raises(Exception, match='no prediction for the image'):
            _evaluate(theirs, ds, outputs)


def _instance_gt_outputs(ds):
    outputs = []
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        gt = sample.gt_instances
        sample.pred_instances = InstanceData(
            masks=gt.masks.to_tensor(torch.bool, 'cpu'), labels=gt.labels,
            bboxes=gt.bboxes.tensor, scores=torch.ones(len(gt)))
        outputs.append(sample.to_dict())
    return outputs


def test_instance_metric_on_remaining_images_with_count(log_messages):
    cfg = _config_on_corpus('instance')
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(cfg.test_dataloader.dataset)
        outputs = _instance_gt_outputs(ds)
        res = _evaluate(METRICS.build(cfg.test_evaluator), ds, outputs)
        assert res['segm_mAP'] == pytest.approx(1.0)
        assert res['num_skipped'] == len(INSTANCE_BAD)
        assert any('3 bad input(s) skipped, not in the metrics' in m and 'badcat.jpg' in m
                   for m in log_messages)
        # mmdet's CocoMetric counts the skipped images as images without detections
        theirs = CocoMetric(ann_file=cfg.test_evaluator.ann_file, metric=['segm'])
        assert _evaluate(theirs, ds, outputs)['segm_mAP'] < 0.9
        # no skip_bad: no count; the metric still scores the processed images only (it
        # follows the dataloader, with a warning), not the JSON's others as misses
        meta = {k: v for k, v in ds.metainfo.items() if k != 'skipped'}
        plain = ClustSegCocoMetric(ann_file=cfg.test_evaluator.ann_file, metric=['segm'])
        plain.dataset_meta = meta
        plain.process({}, outputs)
        res = plain.compute_metrics(plain.results)
        assert 'num_skipped' not in res and res['segm_mAP'] == pytest.approx(1.0)
        assert any('evaluating the 3 image(s) the dataloader processed, of the 6' in m
                   for m in log_messages)


def test_panoptic_instance_metric_follows_a_redirected_dataloader(log_messages):
    """The panoptic config's instance metric (AP^Th_pan) reads its own instance-format
    ann_file. With only the dataloader redirected (here to the corpus), mmdet's CocoMetric
    scores the file's images that were never processed as misses; ours evaluates the
    processed ones and refuses images the file does not list, naming the file."""
    cfg = Config.fromfile(str(ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'))
    [metric_cfg] = [e for e in cfg.test_evaluator if e.get('prefix') == 'pan_instance']
    ann_file = str(ROOT / metric_cfg.ann_file)
    ds = _panoptic(skip_bad=True)  # good (39769), good2 (142238): images of that file
    order = _stems(ds, order=True)
    samples = [ds[order.index(stem)]['data_samples'] for stem in ('good', 'good2')]
    outputs = []
    for sample in samples:
        gt = sample.gt_instances
        sample.pred_instances = InstanceData(
            masks=gt.masks.to_tensor(torch.bool, 'cpu'), labels=gt.labels,
            bboxes=gt.bboxes.tensor, scores=torch.ones(len(gt)))
        outputs.append(sample.to_dict())
    with DefaultScope.overwrite_default_scope('mmdet'):
        ours = METRICS.build(dict(metric_cfg, ann_file=ann_file))
    assert type(ours) is ClustSegCocoMetric
    res = _evaluate(ours, ds, outputs)
    theirs = CocoMetric(ann_file=ann_file, metric=['segm'])
    assert res['segm_mAP'] > _evaluate(theirs, ds, outputs)['segm_mAP']
    assert any('evaluating the 2 image(s) the dataloader processed, of the 3' in m
               for m in log_messages)
    extra = ds[order.index('empty')]['data_samples']  # image 900005: not in that file
    extra.pred_instances = InstanceData(masks=torch.zeros(0, 480, 640, dtype=torch.bool),
                                        labels=torch.zeros(0, dtype=torch.long),
                                        bboxes=torch.zeros(0, 4), scores=torch.zeros(0))
    with pytest.raises(ValueError, match=r"ClustSegCocoMetric\(ann_file='\S+instances_val2017"
                       r"\.json', prefix='pan_instance'\): the dataloader gave image id\(s\) "
                       r"900005, which \S+ does not list.*test_evaluator"):
        ours.process({}, [extra.to_dict()])


def test_panoptic_instance_metric_with_a_skip_bad_converted_file(load_script, tmp_path,
                                                                 log_messages):
    """``tools/test.py --skip-bad`` on a panoptic split with a missing PNG: the instance file
    for AP^Th_pan made by ``panoptic_to_instances.py --skip-bad`` scores the remaining images
    (ground truth as prediction: AP 1), with the dataset's count."""
    conv = load_script('tools/dataset_converters/panoptic_to_instances.py')
    ann_file = str(tmp_path / 'instances.json')
    conv.main(['--skip-bad', osp.join(CORPUS, 'panoptic', PAN_JSON),
               osp.join(CORPUS, 'panoptic', PAN_SEG), ann_file])
    cfg = Config.fromfile(str(ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'))
    [metric_cfg] = [e for e in cfg.test_evaluator if e.get('prefix') == 'pan_instance']
    ds = _panoptic(skip_bad=True)
    outputs = _instance_gt_outputs(ds)
    with DefaultScope.overwrite_default_scope('mmdet'):
        metric = METRICS.build(dict(metric_cfg, ann_file=ann_file))
    res = _evaluate(metric, ds, outputs)
    assert res['segm_mAP'] == pytest.approx(1.0)
    assert res['num_skipped'] == len(PANOPTIC_BAD)


@pytest.mark.parametrize('task', ['panoptic', 'instance'])
@pytest.mark.parametrize('case', ['misspelled', 'reordered', 'missing_category'])
def test_classes_that_the_json_does_not_number_so_are_a_config_error(task, case, tmp_path):
    """mmdet numbers labels by the JSON's categories whose names are in metainfo['classes'], in
    the JSON's order, and skips names it does not find: a misspelled or missing class, or
    classes in another order, would train under the wrong names. Each is a ValueError (even
    with skip_bad), naming the JSON."""
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON
    build = _panoptic if task == 'panoptic' else _instance
    ds = build(ann_file=_subset(task, json_name, ['good'], tmp_path))
    classes = list(ds.metainfo['classes'])
    metainfo = dict(ds.metainfo)
    edit = None
    if case == 'misspelled':
        metainfo['classes'] = tuple(['persn'] + classes[1:])
        match = r"1 name\(s\) that are no category of the JSON: \['persn'\]"
    elif case == 'reordered':  # two things swapped: the same names, other labels
        metainfo['classes'] = tuple([classes[1], classes[0]] + classes[2:])
        match = rf"not in the order of the JSON's categories .*label 0 would be '{classes[0]}'"
    else:
        def edit(js):  # the file lacks a category of the classes
            js['categories'] = [c for c in js['categories'] if c['name'] != classes[-1]]
        match = rf"no category of the JSON: \['{re.escape(classes[-1])}'\]"
    ann_file = _subset(task, json_name, ['good'], tmp_path, edit)
    with pytest.raises(ValueError, match=match) as info:
        build(ann_file=ann_file, metainfo=metainfo, skip_bad=True)
    assert not isinstance(info.value, BadInputError)
    assert osp.basename(ann_file) in str(info.value)


def test_panoptic_things_must_come_first(tmp_path):
    """The heads take the first len(thing_classes) labels as things: a JSON whose stuff
    categories come first (names and order consistent) is a config error, not sky as a
    thing."""
    def edit(js):
        js['categories'] = [c for c in js['categories'] if not c['isthing']] + \
            [c for c in js['categories'] if c['isthing']]

    metainfo = dict(_panoptic(ann_file=_subset('panoptic', PAN_JSON, ['good'], tmp_path)).metainfo)
    ann_file = _subset('panoptic', PAN_JSON, ['good'], tmp_path, edit)
    with open(ann_file) as f:
        metainfo['classes'] = tuple(c['name'] for c in json.load(f)['categories'])
    with pytest.raises(ValueError, match=r'the first 80 classes \(thing_classes\) must be the '
                       r"JSON's isthing categories"):
        _panoptic(ann_file=ann_file, metainfo=metainfo)


@pytest.mark.parametrize('task', ['panoptic', 'instance'])
def test_json_without_images_is_an_error_naming_it(task, tmp_path):
    """mmengine stopped on 'need at least one array to concatenate'."""
    json_name = PAN_JSON if task == 'panoptic' else INS_JSON
    empty = _subset(task, json_name, [], tmp_path)
    with pytest.raises(FileNotFoundError, match='no samples: .*' + re.escape(empty)):
        (_panoptic if task == 'panoptic' else _instance)(ann_file=empty)


def test_a_class_name_twice_is_a_config_error(tmp_path):
    """A JSON with two categories of one name (Objects365-like), or classes listing a name
    twice: mmdet would label past the classes; the error names the duplicates."""
    def edit(js):
        js['categories'].append(dict(id=9997, name='person', supercategory='x'))

    ann_file = _subset('instance', INS_JSON, ['good'], tmp_path, edit)
    with pytest.raises(ValueError, match=r"the JSON names \['person'\] more than once "
                       r"\(category ids \{'person': \[1, 9997\]\}\)"):
        _instance(ann_file=ann_file)
    ann_file = _subset('instance', INS_JSON, ['good'], tmp_path)
    metainfo = dict(_instance(ann_file=ann_file).metainfo)
    metainfo['classes'] = tuple(metainfo['classes']) + ('person', )
    with pytest.raises(ValueError, match=r"metainfo\['classes'\] names \['person'\] more than "
                       'once'):
        _instance(ann_file=ann_file, metainfo=metainfo)
