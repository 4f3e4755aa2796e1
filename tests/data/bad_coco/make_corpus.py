"""Regenerate the COCO bad-input corpus (this folder) from the real samples in tests/data.

    .venv/bin/python tests/data/bad_coco/make_corpus.py

Sources: tests/data/coco_panoptic (val2017 images 39769 and 142238, their panoptic PNGs and
JSON entries) and tests/data/coco_instance (images 547503 and 475546 and their annotations).
See README.md for what each file is and what the readers must do with it.
"""
import copy
import json
import os
import os.path as osp
import shutil

import cv2
import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
DATA = osp.dirname(HERE)
JPEG_QUALITY = 50  # re-encoded to keep the corpus small (< 1 MB)
TRUNCATE = 0.6  # truncated JPEGs keep the first 60 % of the bytes
EXTRA_ID = 7654321  # painted into extraid.png; not a segment of the image
EXTRA_BOX = (slice(440, 470), slice(560, 620))  # rows, columns (inside the couch segment)
PNG_ROWS = 400  # pngsize.png keeps the first 400 of the 480 rows
BAD_CATEGORY = 9999  # not among the categories of either JSON


def _load(path):
    with open(path) as f:
        return json.load(f)


def _dump(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f, separators=(',', ':'))


def _jpeg(src, dst):
    """Re-encode image ``src`` as JPEG ``dst`` (quality ``JPEG_QUALITY``); its bytes."""
    ok, buf = cv2.imencode('.jpg', cv2.imread(src, cv2.IMREAD_COLOR),
                           [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    data = buf.tobytes()
    with open(dst, 'wb') as f:
        f.write(data)
    return data


def _write(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def _fresh(*parts):
    path = osp.join(HERE, *parts)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def _rgb_id(bgr):
    v = bgr.astype(np.int64)
    return v[..., 2] + 256 * v[..., 1] + 65536 * v[..., 0]


def make_panoptic():
    src = osp.join(DATA, 'coco_panoptic')
    gt = _load(osp.join(src, 'annotations', 'panoptic_val2017.json'))
    img_dir = _fresh('panoptic', 'val2017')
    png_dir = _fresh('panoptic', 'annotations', 'panoptic_val2017')
    images = {im['id']: im for im in gt['images']}
    anns = {a['image_id']: a for a in gt['annotations']}
    out = dict(info=gt['info'], licenses=gt['licenses'], images=[], annotations=[],
               categories=gt['categories'])

    def add(stem, img_id, source_id, segments, jpg=None, png=None):
        im = dict(images[source_id], id=img_id, file_name=f'{stem}.jpg')
        out['images'].append(im)
        out['annotations'].append(dict(image_id=img_id, file_name=f'{stem}.png',
                                       segments_info=segments))
        if jpg is not None:
            _write(osp.join(img_dir, f'{stem}.jpg'), jpg)
        if isinstance(png, bytes):  # the source PNG unchanged
            _write(osp.join(png_dir, f'{stem}.png'), png)
        elif png is not None:
            cv2.imwrite(osp.join(png_dir, f'{stem}.png'), png, [cv2.IMWRITE_PNG_COMPRESSION, 9])

    def source(img_id):
        stem = f'{img_id:012d}'
        with open(osp.join(src, 'annotations', 'panoptic_val2017', f'{stem}.png'), 'rb') as f:
            data = f.read()
        png = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        return osp.join(src, 'val2017', f'{stem}.jpg'), data, png, anns[img_id]['segments_info']

    jpg_src, png_bytes, png, segs = source(39769)
    good = _jpeg(jpg_src, osp.join(img_dir, 'good.jpg'))
    add('good', 39769, 39769, segs, png=png_bytes)
    jpg2_src, png2_bytes, _, segs2 = source(142238)
    _jpeg(jpg2_src, osp.join(img_dir, 'good2.jpg'))
    add('good2', 142238, 142238, segs2, png=png2_bytes)

    bad_segs = copy.deepcopy(segs)
    bad_segs[0]['category_id'] = BAD_CATEGORY
    add('badcat', 900001, 39769, bad_segs, jpg=good, png=png_bytes)

    extra = png.copy()
    extra[EXTRA_BOX] = (EXTRA_ID // 65536, EXTRA_ID // 256 % 256, EXTRA_ID % 256)  # BGR
    ids = set(np.unique(_rgb_id(extra)).tolist())
    assert {s['id'] for s in segs} <= ids and EXTRA_ID in ids
    add('extraid', 900002, 39769, segs, jpg=good, png=extra)

    add('pngsize', 900003, 39769, segs, jpg=good, png=png[:PNG_ROWS].copy())
    add('truncated', 900004, 39769, segs, jpg=good[:int(len(good) * TRUNCATE)],
        png=png_bytes)
    add('empty', 900005, 39769, [], jpg=good, png=np.zeros_like(png))
    add('missing', 900006, 39769, segs, png=png_bytes)  # no image file
    add('nopng', 900007, 39769, segs, jpg=good)  # no PNG
    _dump(out, osp.join(HERE, 'panoptic', 'annotations', 'panoptic_val2017.json'))


def make_instance():
    src = osp.join(DATA, 'coco_instance')
    gt = _load(osp.join(src, 'annotations', 'instances_val2017.json'))
    img_dir = _fresh('instance', 'val2017')
    os.makedirs(osp.join(HERE, 'instance', 'annotations'), exist_ok=True)
    images = {im['id']: im for im in gt['images']}
    out = dict(info=gt['info'], licenses=gt['licenses'], images=[], annotations=[],
               categories=gt['categories'])
    next_ann_id = [910000]

    def add(stem, img_id, source_id, anns, jpg=None):
        out['images'].append(dict(images[source_id], id=img_id, file_name=f'{stem}.jpg'))
        for a in anns:
            a = copy.deepcopy(a)
            if img_id != source_id:  # annotation ids are unique in a COCO instance file
                a['id'] = next_ann_id[0]
                next_ann_id[0] += 1
            a['image_id'] = img_id
            out['annotations'].append(a)
        if jpg is not None:
            _write(osp.join(img_dir, f'{stem}.jpg'), jpg)

    def anns_of(img_id):
        return [a for a in gt['annotations'] if a['image_id'] == img_id]

    def jpeg_of(img_id, stem):
        return _jpeg(osp.join(src, 'val2017', f'{img_id:012d}.jpg'),
                     osp.join(img_dir, f'{stem}.jpg'))

    good = jpeg_of(547503, 'good')
    add('good', 547503, 547503, anns_of(547503))
    good2 = jpeg_of(475546, 'good2')
    add('good2', 475546, 475546, anns_of(475546))
    bad = copy.deepcopy(anns_of(547503))
    bad[0]['category_id'] = BAD_CATEGORY
    add('badcat', 900001, 547503, bad, jpg=good)
    add('truncated', 900002, 547503, anns_of(547503), jpg=good[:int(len(good) * TRUNCATE)])
    add('empty', 900003, 475546, [], jpg=good2)
    add('missing', 900004, 547503, anns_of(547503))  # no image file
    _dump(out, osp.join(HERE, 'instance', 'annotations', 'instances_val2017.json'))


if __name__ == '__main__':
    make_panoptic()
    make_instance()
    total = sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(HERE) for f in fs)
    print(f'corpus written to {HERE}: {total / 1024:.0f} KiB')
