"""COCO panoptic annotations -> COCO instance annotations of the thing segments (RLE masks).

The instance view of a panoptic ground truth, for scoring a panoptic model's instance output
with mmdet's ``CocoMetric`` (AP^Th_pan of the paper's Table 1). On the full COCO val2017 the
official ``instances_val2017.json`` can be used instead; this script serves subsets and other
panoptic datasets in the COCO format.

    python tools/dataset_converters/panoptic_to_instances.py \
        data/coco/annotations/panoptic_val2017.json data/coco/annotations/panoptic_val2017 \
        data/coco/annotations/panoptic_val2017_instances.json

With ``--skip-bad`` an image whose PNG is missing, unreadable or lacks one of its thing
segments is left out of the output (its image entry too) and named in a warning, instead of
stopping the conversion: the instance file for a split that ``tools/test.py --skip-bad``
evaluates, whose panoptic dataset drops these images (and any others it cannot use).
``ClustSegCocoMetric`` scores the images the dataloader processed, so an image the dataset
dropped is in neither metric.
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import List, Tuple

import numpy as np
from panopticapi.utils import rgb2id
from pycocotools import mask as mask_utils

from clustseg.datasets.image_io import (BadInputError, MissingInputError, read_file_bytes,
                                        read_image)


def read_panoptic_json(path: str) -> dict:
    """The COCO panoptic file ``path``; :class:`BadInputError` naming it when it is missing,
    not JSON, or lacks the ``images`` / ``annotations`` / ``categories`` lists."""
    data = read_file_bytes(path)  # a missing file: an error naming it
    try:
        pan = json.loads(data)
    except ValueError as err:  # JSON or UTF-8 errors
        raise BadInputError(path, f'not a JSON file: {err}') from err
    missing = [k for k in ('images', 'annotations', 'categories')
               if not isinstance(pan, dict) or not isinstance(pan.get(k), list)]
    if missing:
        raise BadInputError(path, f'no {", ".join(repr(k) for k in missing)} list(s): not a '
                            'COCO panoptic annotation file')
    for i, a in enumerate(pan['annotations']):
        if not (isinstance(a, dict) and 'file_name' in a and
                isinstance(a.get('segments_info'), list)):
            raise BadInputError(path, f'annotations[{i}] has no file_name and segments_info '
                                'list: not a COCO panoptic annotation file (an instance '
                                'annotation file?)')
    return pan


def thing_segments(pan_json: str, png: str, ann: dict, things: dict) -> List[dict]:
    """-> the instance annotations (no ids yet) of the thing segments of panoptic annotation
    ``ann`` of ``pan_json``, read from its PNG ``png``; :class:`BadInputError` naming the PNG
    when it is missing, unreadable, or a thing segment has no pixels in it."""
    # checked reading: a missing, truncated or corrupt PNG is an error naming it
    try:
        rgb = read_image(png, channel_order='rgb')
    except MissingInputError:
        raise MissingInputError(png, f'panoptic PNG of image {ann.get("image_id")} not '
                                'found') from None
    ids = rgb2id(rgb.astype(np.uint32))
    out = []
    for s in ann['segments_info']:
        if s['category_id'] not in things:
            continue
        m = ids == s['id']
        if not m.any():
            raise BadInputError(png, f'segment {s["id"]} of {pan_json} has no pixels')
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode('ascii')
        out.append(dict(image_id=ann['image_id'], category_id=s['category_id'],
                        segmentation=rle, area=int(m.sum()), bbox=s['bbox'],
                        iscrowd=s.get('iscrowd', 0)))
    return out


def convert(pan_json: str, png_dir: str,
            skip_bad: bool = False) -> Tuple[dict, List[Tuple[str, str]]]:
    """-> the instance-format dict (images, thing categories, one annotation per thing
    segment with its bbox, pixel area and iscrowd; annotation ids 1..N), and the
    ``(png, reason)`` of the images left out. A bad PNG raises :class:`BadInputError`, or
    with ``skip_bad`` leaves its image out of ``images`` and ``annotations``."""
    pan = read_panoptic_json(pan_json)
    things = {c['id']: c for c in pan['categories'] if c.get('isthing', 0) == 1}
    anns, skipped, dropped = [], [], set()
    for a in pan['annotations']:
        png = osp.join(png_dir, a['file_name'])
        try:
            segments = thing_segments(pan_json, png, a, things)
        except BadInputError as err:
            if not skip_bad:
                raise
            skipped.append((png, err.reason))
            dropped.add(a['image_id'])
            continue
        for seg in segments:  # annotation ids unique over the file (segment ids repeat)
            anns.append(dict(id=len(anns) + 1, **seg))
    images = [im for im in pan['images'] if im.get('id') not in dropped]
    return dict(info=pan.get('info', {}), licenses=pan.get('licenses', []), images=images,
                categories=list(things.values()), annotations=anns), skipped


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('panoptic_json')
    p.add_argument('panoptic_png_dir')
    p.add_argument('out_json')
    p.add_argument('--skip-bad', action='store_true',
                   help='leave out (and name) the images whose PNG is missing, unreadable or '
                   'lacks a thing segment, instead of stopping')
    a = p.parse_args(argv)
    try:
        out, skipped = convert(a.panoptic_json, a.panoptic_png_dir, a.skip_bad)
    except BadInputError as err:
        raise SystemExit(f'error: {err}') from None
    for png, reason in skipped:
        print(f'warning: left out {png}: {reason}', file=sys.stderr)
    tmp = a.out_json + '.tmp'
    with open(tmp, 'w') as f:  # complete, then renamed: a kill leaves no partial file
        json.dump(out, f)
    os.replace(tmp, a.out_json)
    print(f'{a.out_json}: {len(out["images"])} images, {len(out["annotations"])} thing '
          f'segments, {len(out["categories"])} thing categories'
          + (f', {len(skipped)} image(s) left out' if a.skip_bad else ''))


if __name__ == '__main__':
    main()
