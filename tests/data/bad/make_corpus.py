"""Regenerate the bad-input corpus in this folder from the BSDS500 test subset.

    .venv/bin/python tests/data/bad/make_corpus.py

Every file is cut from ``tests/data/bsds500`` (val image 103070 and its ``.mat``); see
README.md for what each case is and what the readers must do with it.
"""
import os
import os.path as osp

import cv2
import numpy as np
from scipy.io import loadmat, savemat

HERE = osp.dirname(osp.abspath(__file__))
BSDS = osp.join(HERE, '..', 'bsds500')
SRC_ID = '103070'  # 321 x 481 landscape val image
CROP = (slice(120, 184), slice(200, 296))  # 64 x 96 pixels with several regions
SMALL = (slice(120, 180), slice(200, 280))  # 60 x 80: the annotation of another size
TINY = (slice(136, 144), slice(208, 216))  # 8 x 8, 2-3 regions


def _segs(crop):
    """All annotators of the source .mat, cropped: A x h x w uint16."""
    gt = loadmat(osp.join(BSDS, 'groundTruth', 'val', SRC_ID + '.mat'))['groundTruth']
    return np.stack([gt[0, k]['Segmentation'][0, 0][crop] for k in range(gt.shape[1])])


def _save_mat(path, segs, field='Segmentation', var='groundTruth'):
    """A BSDS-style groundTruth .mat: a 1 x A cell of structs with ``field``."""
    cell = np.empty((1, len(segs)), dtype=object)
    for k, seg in enumerate(segs):
        entry = np.empty((1, 1), dtype=[(field, object), ('Boundaries', object)])
        entry[0, 0][field] = seg.astype(np.uint16)
        entry[0, 0]['Boundaries'] = np.zeros(seg.shape, bool)
        cell[0, k] = entry
    savemat(path, {var: cell}, do_compression=True)


def _write(path, data: bytes):
    with open(path, 'wb') as f:
        f.write(data)


def _encode(ext, img, *params):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok, ext
    return buf.tobytes()


def main():
    src = cv2.imread(osp.join(BSDS, 'images', 'val', SRC_ID + '.jpg'), cv2.IMREAD_COLOR)
    dirs = {d: osp.join(HERE, *d.split('/')) for d in (
        'images/jpg', 'images/png', 'groundTruth/jpg', 'groundTruth/png', 'labels/jpg',
        'labels/png')}
    for d in dirs.values():
        os.makedirs(d, exist_ok=True)
    crop, segs = src[CROP], _segs(CROP)
    jpeg = _encode('.jpg', crop, cv2.IMWRITE_JPEG_QUALITY, 90)

    def ann(split, name, these=segs, label=True):
        _save_mat(osp.join(dirs[f'groundTruth/{split}'], name + '.mat'), these)
        if label:
            cv2.imwrite(osp.join(dirs[f'labels/{split}'], name + '.png'),
                        these[0].astype(np.uint16))

    # --- images/jpg: the JPEG cases (annotations are the crop's, unless said otherwise)
    _write(osp.join(dirs['images/jpg'], 'good.jpg'), jpeg)
    ann('jpg', 'good')
    _write(osp.join(dirs['images/jpg'], 'truncated.jpg'), jpeg[:len(jpeg) * 3 // 5])
    ann('jpg', 'truncated')
    _write(osp.join(dirs['images/jpg'], 'empty.jpg'), b'')
    ann('jpg', 'empty')
    _write(osp.join(dirs['images/jpg'], 'text.jpg'),
           b'This is a text file named .jpg, not an image.\n')
    ann('jpg', 'text')
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    _write(osp.join(dirs['images/jpg'], 'gray.jpg'),
           _encode('.jpg', gray, cv2.IMWRITE_JPEG_QUALITY, 90))
    ann('jpg', 'gray')
    _write(osp.join(dirs['images/jpg'], 'tiny.jpg'),
           _encode('.jpg', src[TINY], cv2.IMWRITE_JPEG_QUALITY, 95))
    ann('jpg', 'tiny', _segs(TINY))
    _write(osp.join(dirs['images/jpg'], 'annsize.jpg'), jpeg)
    ann('jpg', 'annsize', _segs(SMALL))
    _write(osp.join(dirs['images/jpg'], 'noann.jpg'), jpeg)  # no .mat, no label
    _write(osp.join(dirs['images/jpg'], 'nogt.jpg'), jpeg)
    _save_mat(osp.join(dirs['groundTruth/jpg'], 'nogt.mat'), segs, var='segs')
    cv2.imwrite(osp.join(dirs['labels/jpg'], 'nogt.png'), segs[0].astype(np.uint16))
    _write(osp.join(dirs['images/jpg'], 'noseg.jpg'), jpeg)
    _save_mat(osp.join(dirs['groundTruth/jpg'], 'noseg.mat'), segs, field='Regions')
    cv2.imwrite(osp.join(dirs['labels/jpg'], 'noseg.png'), segs[0].astype(np.uint16))
    _write(osp.join(dirs['images/jpg'], 'labeltrunc.jpg'), jpeg)
    ann('jpg', 'labeltrunc', label=False)
    label = _encode('.png', segs[0].astype(np.uint16))
    _write(osp.join(dirs['labels/jpg'], 'labeltrunc.png'), label[:len(label) // 2])

    # --- images/png: conversions (all three decode to the same pixels) and a truncated PNG
    bgra = np.dstack([crop, np.linspace(0, 255, crop.size // 3).reshape(crop.shape[:2])
                      .astype(np.uint8)])
    cv2.imwrite(osp.join(dirs['images/png'], 'rgba.png'), bgra)
    ann('png', 'rgba')
    rng = np.random.RandomState(0)
    deep = crop.astype(np.uint16) * 256 + rng.randint(0, 256, crop.shape).astype(np.uint16)
    cv2.imwrite(osp.join(dirs['images/png'], 'deep16.png'), deep)
    ann('png', 'deep16')
    cv2.imwrite(osp.join(dirs['images/png'], 'gray.png'), gray)
    ann('png', 'gray')
    png = _encode('.png', crop)
    _write(osp.join(dirs['images/png'], 'truncated.png'), png[:len(png) * 3 // 5])
    ann('png', 'truncated')

    make_semantic(jpeg, segs[0], _segs(SMALL)[0])


#: Semantic corpus (COCO-Stuff layout: 171 classes, ``<stem>_labelTrainIds.png``).
SEMANTIC_SUFFIX = '_labelTrainIds.png'
IGNORE_BOX = (slice(0, 8), slice(0, 16))  # set to 255 (ignored) in every label map
OUT_OF_RANGE = 200  # not a class of the 171 and not 255


def make_semantic(jpeg, seg, small_seg):
    """``semantic/images/val/<stem>.jpg`` (all the main crop) and
    ``semantic/annotations/val/<stem>_labelTrainIds.png``: class ids = the first annotator's
    region ids of the crop (all below 171), a 255 (ignored) box, one broken map per stem."""
    img_dir = osp.join(HERE, 'semantic', 'images', 'val')
    ann_dir = osp.join(HERE, 'semantic', 'annotations', 'val')
    for d in (img_dir, ann_dir):
        os.makedirs(d, exist_ok=True)

    def labels(s):
        s = s.astype(np.uint8)
        s[IGNORE_BOX] = 255
        return s

    label = labels(seg)
    assert label[label != 255].max() < 171
    good = _encode('.png', label)
    wrong = label.copy()
    wrong[40:48, 60:80] = OUT_OF_RANGE
    maps = {
        'good': good,
        'labelempty': b'',
        'labeltrunc': good[:len(good) // 2],
        'labelsize': _encode('.png', labels(small_seg)),
        'labelrgb': _encode('.png', np.dstack([label, label, label])),
        'labelrange': _encode('.png', wrong),
    }
    for stem, data in maps.items():
        _write(osp.join(img_dir, stem + '.jpg'), jpeg)
        _write(osp.join(ann_dir, stem + SEMANTIC_SUFFIX), data)
    _write(osp.join(img_dir, 'nolabel.jpg'), jpeg)  # no label map


if __name__ == '__main__':
    main()
