"""tools/dataset_converters/coco128_seg.py on the 3 real coco128-seg samples of
tests/data/coco128_seg: YOLO polygons -> COCO instance JSON (official category ids, pixel
polygons, mask areas), read by ClustSegCocoDataset and mmdet's LoadAnnotations."""
import filecmp
import json
import re
import shutil

import numpy as np
import pytest
from mmdet.datasets import CocoDataset
from mmengine.registry import DefaultScope
from PIL import Image
from pycocotools import mask as mask_utils

from clustseg.datasets import BadInputError, ClustSegCocoDataset, MissingInputError
from clustseg.registry import DATASETS

IMAGES = {'train': [508, 536], 'test': [643]}  # with num_train=2
LINES = {508: 0, 536: 11, 643: 20}  # polygon lines per image (508 has no label file)
# pycocotools' decode under numpy 2
pytestmark = pytest.mark.filterwarnings('ignore:__array__ implementation:DeprecationWarning')


@pytest.fixture(scope='module')
def conv(load_script):
    return load_script('tools/dataset_converters/coco128_seg.py')


@pytest.fixture(scope='module')
def src(repo_root):
    return repo_root / 'tests' / 'data' / 'coco128_seg'


@pytest.fixture(scope='module')
def converted(conv, src, tmp_path_factory):
    out = tmp_path_factory.mktemp('coco128')
    stats = conv.main([str(src), str(out), '--num-train', '2'])
    js = {s: json.loads((out / 'annotations' / f'instances_{s}.json').read_text())
          for s in IMAGES}
    return out, stats, js


def _yolo_lines(src, img_id):
    path = src / 'labels' / 'train2017' / f'{img_id:012d}.txt'
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def test_category_table_is_the_official_coco_one(conv, repo_root):
    ids = conv.COCO_CATEGORY_IDS
    assert len(ids) == 80 and list(ids) == sorted(set(ids)) and ids[0] == 1 and ids[-1] == 90
    assert sorted(set(range(1, 91)) - set(ids)) == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    assert conv.COCO_CLASSES == tuple(CocoDataset.METAINFO['classes'])
    # the official 2017 categories (tests/data/coco_instance: instances_val2017.json)
    official = json.loads((repo_root / 'tests' / 'data' / 'coco_instance' / 'annotations' /
                           'instances_val2017.json').read_text())['categories']
    assert [(c['id'], c['name']) for c in official] == \
        [(c['id'], c['name']) for c in conv.categories()]
    assert (ids[0], conv.COCO_CLASSES[0]) == (1, 'person')
    assert (ids[45], conv.COCO_CLASSES[45]) == (51, 'bowl')


def test_split_ids(conv):
    ids = [int(i) for i in np.random.default_rng(0).permutation(1000)[:128]]
    train, test = conv.split_ids(ids, conv.NUM_TRAIN)
    assert (len(train), len(test)) == (78, 50) and conv.NUM_TRAIN == 78
    assert train + test == sorted(ids) and max(train) < min(test)
    assert conv.split_ids([9, 3, 5], 0) == ([], [3, 5, 9])
    assert conv.split_ids([9, 3, 5], 3) == ([3, 5, 9], [])
    with pytest.raises(ValueError, match='num_train=4 but there are 3 images'):
        conv.split_ids([9, 3, 5], 4)
    with pytest.raises(ValueError, match='duplicate'):
        conv.split_ids([3, 3], 1)


def test_images_and_annotations(converted, src):
    out, stats, js = converted
    assert stats['images'] == {'train': 2, 'test': 1}
    assert stats['annotations'] == {'train': 11, 'test': 20}
    assert stats['unlabelled_images'] == 1 and stats['orphan_label_files'] == 0
    assert stats['skipped_few_points'] == stats['skipped_empty_mask'] == 0
    ann_ids = []
    for split, ids in IMAGES.items():
        d = js[split]
        assert [c['id'] for c in d['categories']][:3] == [1, 2, 3] and len(d['categories']) == 80
        assert [i['id'] for i in d['images']] == ids
        for img in d['images']:
            name = f'{img["id"]:012d}.jpg'
            assert img['file_name'] == name
            assert filecmp.cmp(src / 'images' / 'train2017' / name, out / 'images' / name,
                               shallow=False)
            with Image.open(out / 'images' / name) as im:
                assert (img['width'], img['height']) == im.size
            anns = [a for a in d['annotations'] if a['image_id'] == img['id']]
            lines = _yolo_lines(src, img['id'])
            assert len(anns) == len(lines) == LINES[img['id']]  # no degenerate polygon here
            w, h = img['width'], img['height']
            for ann, line in zip(anns, lines):
                cat = {c['id']: c['name'] for c in d['categories']}[ann['category_id']]
                assert cat == CocoDataset.METAINFO['classes'][int(line[0])]
                xy = np.array(line[1:], float).reshape(-1, 2) * [w, h]
                assert np.allclose(np.array(ann['segmentation'][0]).reshape(-1, 2), xy)
                x, y, bw, bh = ann['bbox']
                assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
                assert [x, y, x + bw, y + bh] == pytest.approx(
                    [*xy.min(0), *xy.max(0)])
                mask = mask_utils.decode(mask_utils.frPyObjects(ann['segmentation'], h, w))
                assert ann['area'] == mask.sum() > 0 and ann['iscrowd'] == 0
                ann_ids.append(ann['id'])
    assert ann_ids == list(range(1, 32))
    # YOLO class 0 -> person (id 1) in 000000000536, 45 -> bowl (id 51) in 000000000643
    by_img = {a['image_id']: set() for d in js.values() for a in d['annotations']}
    for d in js.values():
        for a in d['annotations']:
            by_img[a['image_id']].add(a['category_id'])
    assert {1, 31, 62, 77} == by_img[536]  # person, handbag, chair, cell phone
    assert 51 in by_img[643] and len(by_img[643]) == 6


def test_coco_dataset_and_instance_pipeline(converted):
    out, _, js = converted
    classes = CocoDataset.METAINFO['classes']
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(dict(
            type='ClustSegCocoDataset', data_root=str(out),
            ann_file='annotations/instances_test.json', data_prefix=dict(img='images/'),
            metainfo=dict(classes=classes),
            pipeline=[dict(type='LoadImageChecked', to_float32=True),
                      dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]))
        assert type(ds) is ClustSegCocoDataset and len(ds) == 1
        res = ds[0]
        assert res['img'].shape[:2] == (js['test']['images'][0]['height'],
                                        js['test']['images'][0]['width'])
        anns = js['test']['annotations']
        assert len(res['gt_masks']) == len(res['gt_bboxes']) == len(anns) == 20
        names = {c['id']: c['name'] for c in js['test']['categories']}
        assert [classes[k] for k in res['gt_bboxes_labels']] == \
            [names[a['category_id']] for a in anns]
        assert 'bowl' in [classes[k] for k in res['gt_bboxes_labels']]
        areas = res['gt_masks'].to_ndarray().reshape(20, -1).sum(1)
        assert areas.tolist() == [a['area'] for a in anns]
        # the image without labels is in the train split, without instances
        ds = DATASETS.build(dict(
            type='ClustSegCocoDataset', data_root=str(out),
            ann_file='annotations/instances_train.json', data_prefix=dict(img='images/'),
            metainfo=dict(classes=classes), test_mode=True, pipeline=[]))
        assert [(d['img_id'], len(d['instances'])) for d in ds] == [(508, 0), (536, 11)]


def test_polygon_annotation(conv):
    tri = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    ann = conv.polygon_annotation(tri, 45, height=10, width=20)
    assert ann['category_id'] == 51 and ann['bbox'] == [0, 0, 20, 10]
    assert ann['segmentation'] == [[0, 0, 20, 0, 0, 10]]
    assert 90 <= ann['area'] <= 110  # half of 200 pixels, rasterised
    assert conv.polygon_annotation(tri[:2], 0, 10, 20) is None
    line = np.array([[0.1, 0.1], [0.5, 0.1], [0.9, 0.1]])  # collinear: no pixels
    assert conv.polygon_annotation(line, 0, 10, 20) is None


def _bad_source(src, tmp_path, text, stem='000000000536'):
    root = tmp_path / 'coco128-seg'
    shutil.copytree(src, root, ignore=shutil.ignore_patterns('*.md'))
    path = root / 'labels' / 'train2017' / f'{stem}.txt'
    path.write_text(text)
    return root, path


def test_degenerate_polygons_and_orphan_labels_are_counted(conv, src, tmp_path, capsys):
    text = ('0 0.1 0.1 0.5 0.1\n'                 # 2 points
            '0 0.1 0.2 0.5 0.2 0.9 0.2\n'         # collinear: empty mask
            '\n'
            '56 0.1 0.1 0.6 0.1 0.6 0.7 1.0005 -0.0004\n')  # within tolerance: clipped
    root, _ = _bad_source(src, tmp_path, text)
    (root / 'labels' / 'train2017' / '000000000999.txt').write_text('0 0 0 1 0 1 1\n')
    stats = conv.convert(str(root), str(tmp_path / 'out'), num_train=3)
    assert stats['skipped_few_points'] == 1 and stats['skipped_empty_mask'] == 1
    assert stats['orphan_label_files'] == 1 and stats['annotations'] == {'train': 21, 'test': 0}
    printed = capsys.readouterr().out
    assert '000000000999.txt: label file without image' in printed
    assert 'skipped polygons: 1 with < 3 points, 1 with an empty mask' in printed
    anns = json.loads((tmp_path / 'out' / 'annotations' / 'instances_train.json').read_text())
    chair = [a for a in anns['annotations'] if a['image_id'] == 536]
    width = [i['width'] for i in anns['images'] if i['id'] == 536][0]
    assert len(chair) == 1 and chair[0]['category_id'] == 62
    assert chair[0]['segmentation'][0][-2:] == [width, 0]  # clipped to the image
    assert chair[0]['bbox'][0] + chair[0]['bbox'][2] == pytest.approx(width)


@pytest.mark.parametrize('line,reason', [
    ('0 0.1 0.1 0.5 0.1 0.3', r'odd number of coordinates \(5\)'),
    ('80 0.1 0.1 0.5 0.1 0.3 0.5', r'class 80 outside 0\.\.79'),
    ('-1 0.1 0.1 0.5 0.1 0.3 0.5', r'class -1 outside 0\.\.79'),
    ('person 0.1 0.1 0.5 0.1 0.3 0.5', r"class 'person' is not an integer"),
    ('3 0.1 0.1 0.5 1.002 0.3 0.5', r'coordinate 1\.002 outside \[0, 1\]'),
    ('3 0.1 0.1 0.5 x 0.3 0.5', 'could not convert'),
])
def test_malformed_line_names_file_and_line(conv, src, tmp_path, line, reason):
    root, path = _bad_source(src, tmp_path, f'0 0.1 0.1 0.5 0.1 0.3 0.5\n\n{line}\n')
    with pytest.raises(BadInputError, match=re.escape(str(path)) + ': line 3: ' + reason):
        conv.convert(str(root), str(tmp_path / 'out'), num_train=2, verbose=False)
    with pytest.raises(SystemExit, match=re.escape(f'error: {path}: line 3: ')):
        conv.main([str(root), str(tmp_path / 'out'), '--num-train', '2'])


def test_missing_and_misnamed_inputs(conv, src, tmp_path):
    with pytest.raises(MissingInputError, match=re.escape(
            str(tmp_path / 'nowhere' / 'images' / 'train2017')) + ': image folder not found'):
        conv.image_files(str(tmp_path / 'nowhere'))
    root, _ = _bad_source(src, tmp_path, '')
    shutil.copy(root / 'images' / 'train2017' / '000000000508.jpg',
                root / 'images' / 'train2017' / 'cat.jpg')
    with pytest.raises(BadInputError, match=r'cat\.jpg: image name is not a COCO image id'):
        conv.convert(str(root), str(tmp_path / 'out'), num_train=2)
    (root / 'images' / 'train2017' / 'cat.jpg').unlink()
    with pytest.raises(SystemExit, match='num_train=78 but there are 3 images'):
        conv.main([str(root), str(tmp_path / 'out')])
