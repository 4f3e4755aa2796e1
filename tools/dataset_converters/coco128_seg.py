"""coco128-seg (Ultralytics YOLO polygon labels) -> COCO instance segmentation JSON.

Input ``SRC``: ``images/train2017/<12-digit id>.jpg`` (the first 128 COCO train2017 images;
COCO terms of use, Flickr licences) and ``labels/train2017/<id>.txt``, one object per line:
``cls x1 y1 x2 y2 ...`` with ``cls`` the YOLO class 0..79 (the 80-class COCO order of mmdet's
``CocoDataset.METAINFO['classes']``) and polygon vertices normalised to [0, 1] (label files by
Ultralytics, GPL-3.0).

Output under ``OUT``: ``images/<id>.jpg`` (copied unchanged) and
``annotations/instances_{train,test}.json`` in the COCO instance format, read by mmdet's
``CocoDataset`` / :class:`~clustseg.datasets.ClustSegCocoDataset` and pycocotools' COCOeval.
Split by sorted image id: the first :data:`NUM_TRAIN` images -> train, the rest -> test
(78 / 50 for the 128 images; see :func:`split_ids`).

* images: ``id`` = int(stem), ``file_name``, ``height`` / ``width`` read with PIL; an image
  without label file, or with an empty one, is kept without annotations;
* one annotation per polygon line: ``segmentation`` ``[[x1 * W, y1 * H, ...]]`` in pixels
  (vertices within 1e-3 outside [0, 1] are clipped to it first), ``area`` = the pixel area of
  the polygon's mask (pycocotools ``frPyObjects`` + ``merge`` + ``area``), ``bbox``
  ``[x, y, w, h]`` = the polygon's extent, ``iscrowd`` 0, ``category_id`` = the official COCO
  id of the YOLO class (:data:`COCO_CATEGORY_IDS`); ids 1..N over both files, in image order;
* categories: the 80 classes with their official ids and mmdet's names.

Polygons with fewer than 3 vertices or an empty mask are skipped and counted; a label file
without its image is skipped with a warning and counted. A malformed line (odd number of
coordinates, non-numeric value, class outside 0..79, coordinate outside [0, 1] by more than
1e-3) is an error naming the file and line; so is an image whose name is not a number.
Re-running overwrites the outputs.

    python tools/dataset_converters/coco128_seg.py /path/to/coco128-seg data/coco128
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmdet.datasets import CocoDataset
from PIL import Image
from pycocotools import mask as mask_utils

from clustseg.datasets.image_io import BadInputError, MissingInputError

#: Images (in sorted id order) of the train split; the others are the test split.
NUM_TRAIN = 78
#: Official COCO category id of YOLO class i (the 80 ids of 1..90 in use).
COCO_CATEGORY_IDS = (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66),
                     67, 70, *range(72, 83), *range(84, 91))
#: mmdet's 80 COCO class names, in YOLO class order.
COCO_CLASSES = tuple(CocoDataset.METAINFO['classes'])
#: How far outside [0, 1] a normalised coordinate may lie (then clipped) before it is an error.
COORD_TOLERANCE = 1e-3
IMG_DIR = osp.join('images', 'train2017')
LABEL_DIR = osp.join('labels', 'train2017')


def categories() -> List[dict]:
    """The 80 COCO categories (official id, mmdet name)."""
    return [dict(id=i, name=n) for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)]


def split_ids(ids: Sequence[int], num_train: int) -> Tuple[List[int], List[int]]:
    """``(train, test)``: the ``num_train`` smallest ids and the others, each sorted."""
    ids = sorted(ids)
    if len(set(ids)) != len(ids):
        raise ValueError(f'duplicate image ids in {ids}')
    if not 0 <= num_train <= len(ids):
        raise ValueError(f'num_train={num_train} but there are {len(ids)} images')
    return ids[:num_train], ids[num_train:]


def parse_label_file(path: str) -> List[Tuple[int, np.ndarray, int]]:
    """``[(yolo class, N x 2 normalised vertices clipped to [0, 1], line number)]`` of a YOLO
    polygon label file (blank lines ignored); a malformed line is a
    :class:`~clustseg.datasets.BadInputError` naming the file and line."""
    objects = []
    with open(path) as f:
        for num, line in enumerate(f, 1):
            tokens = line.split()
            if not tokens:
                continue
            where = f'line {num}'
            try:
                cls = int(tokens[0])
            except ValueError:
                raise BadInputError(path, f'{where}: class {tokens[0]!r} is not an integer'
                                    ) from None
            if not 0 <= cls < len(COCO_CLASSES):
                raise BadInputError(path, f'{where}: class {cls} outside 0..79')
            if (len(tokens) - 1) % 2:
                raise BadInputError(path, f'{where}: odd number of coordinates '
                                    f'({len(tokens) - 1}); expected x y pairs')
            try:
                xy = np.array([float(t) for t in tokens[1:]], np.float64).reshape(-1, 2)
            except ValueError as err:
                raise BadInputError(path, f'{where}: {err}') from None
            bad = ~np.isfinite(xy) | (xy < -COORD_TOLERANCE) | (xy > 1 + COORD_TOLERANCE)
            if bad.any():
                raise BadInputError(path, f'{where}: coordinate {xy[bad][0]:g} outside [0, 1] '
                                    '(coordinates are normalised to the image size)')
            objects.append((cls, np.clip(xy, 0.0, 1.0), num))
    return objects


def polygon_annotation(xy: np.ndarray, cls: int, height: int, width: int) -> Optional[dict]:
    """COCO annotation fields (no ``id`` / ``image_id``) of normalised polygon ``xy`` in an
    image of ``height`` x ``width``, or None if it has < 3 vertices or an empty mask."""
    if len(xy) < 3:
        return None
    pix = xy * np.array([width, height], np.float64)
    poly = [float(v) for v in pix.ravel()]
    area = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects([poly], height, width))))
    if area <= 0:
        return None
    x0, y0 = pix.min(0)
    x1, y1 = pix.max(0)
    return dict(segmentation=[poly], area=area,
                bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)], iscrowd=0,
                category_id=COCO_CATEGORY_IDS[cls])


def image_files(src: str) -> Tuple[Dict[int, Tuple[str, Optional[str]]], List[str]]:
    """``({image id: (image path, label path or None)}, [label files without image])``."""
    img_dir, label_dir = osp.join(src, IMG_DIR), osp.join(src, LABEL_DIR)
    if not osp.isdir(img_dir):
        raise MissingInputError(img_dir, f'image folder not found (expected {IMG_DIR}/ under '
                                f'{src})')
    labels = set()
    if osp.isdir(label_dir):
        labels = {f[:-4] for f in os.listdir(label_dir) if f.endswith('.txt')}
    files = {}
    for name in sorted(os.listdir(img_dir)):
        stem, ext = osp.splitext(name)
        if ext.lower() not in ('.jpg', '.jpeg', '.png'):
            continue
        if not stem.isdigit():
            raise BadInputError(osp.join(img_dir, name), 'image name is not a COCO image id '
                                '(digits); image ids are int(name)')
        img_id = int(stem)
        if img_id in files:
            raise BadInputError(osp.join(img_dir, name), f'image id {img_id} occurs twice')
        label = osp.join(label_dir, stem + '.txt') if stem in labels else None
        files[img_id] = (osp.join(img_dir, name), label)
    if not files:
        raise MissingInputError(img_dir, 'no images in this folder')
    used = {osp.basename(lab)[:-4] for _, lab in files.values() if lab}
    orphans = sorted(osp.join(label_dir, s + '.txt') for s in labels - used)
    return files, orphans


def convert(src: str, out: str, num_train: int = NUM_TRAIN, verbose: bool = True) -> Dict:
    """Convert ``src`` into ``out``; returns statistics (images, annotations per split,
    skipped polygons, images without labels, label files without image)."""
    if not osp.isdir(src):
        raise MissingInputError(src, 'coco128-seg source folder not found')
    start = time.time()
    files, orphans = image_files(src)
    for path in orphans:
        print(f'warning: {path}: label file without image '
              f'{osp.join(src, IMG_DIR, osp.basename(path)[:-4])}.jpg, skipped', flush=True)
    splits = dict(zip(('train', 'test'), split_ids(files, num_train)))
    os.makedirs(osp.join(out, 'images'), exist_ok=True)
    os.makedirs(osp.join(out, 'annotations'), exist_ok=True)
    stats = dict(images={}, annotations={}, skipped_few_points=0, skipped_empty_mask=0,
                 unlabelled_images=0, orphan_label_files=len(orphans))
    ann_id = 0
    for split, ids in splits.items():
        images, anns = [], []
        for img_id in ids:
            img_path, label_path = files[img_id]
            with Image.open(img_path) as im:
                width, height = im.size
            name = osp.basename(img_path)
            images.append(dict(id=img_id, file_name=name, height=height, width=width))
            objects = parse_label_file(label_path) if label_path else []
            if not objects:
                stats['unlabelled_images'] += 1
            for cls, xy, _ in objects:
                ann = polygon_annotation(xy, cls, height, width)
                if ann is None:
                    key = 'skipped_few_points' if len(xy) < 3 else 'skipped_empty_mask'
                    stats[key] += 1
                    continue
                ann_id += 1
                anns.append(dict(id=ann_id, image_id=img_id, **ann))
            shutil.copyfile(img_path, osp.join(out, 'images', name))
        with open(osp.join(out, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(dict(images=images, annotations=anns, categories=categories()), f)
        stats['images'][split] = len(images)
        stats['annotations'][split] = len(anns)
        if verbose:
            print(f'{split}: {len(images)} images, {len(anns)} annotations', flush=True)
    if verbose:
        print(f'skipped polygons: {stats["skipped_few_points"]} with < 3 points, '
              f'{stats["skipped_empty_mask"]} with an empty mask; '
              f'{stats["unlabelled_images"]} images without labels, '
              f'{stats["orphan_label_files"]} label files without image; '
              f'{time.time() - start:.1f} s', flush=True)
    return stats


def main(argv: Optional[List[str]] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', help='the coco128-seg folder (images/train2017, labels/train2017)')
    p.add_argument('out', help='output folder (images/, annotations/)')
    p.add_argument('--num-train', type=int, default=NUM_TRAIN,
                   help=f'images of the train split (default {NUM_TRAIN})')
    args = p.parse_args(argv)
    try:
        return convert(args.src, args.out, args.num_train)
    except (BadInputError, ValueError) as err:
        raise SystemExit(f'error: {err}') from None


if __name__ == '__main__':
    main()
