"""COCO-Stuff 164k label maps -> the 171-class train ids of mmseg's ``COCOStuffDataset``.

The official ``stuffthingmaps`` PNGs hold ``COCO-Stuff class id - 1`` (0..181: 0-90 things,
91-181 stuff; 255 = unlabeled). Eleven of the 91 thing ids are unused in COCO 2017 (COCO ids 12,
26, 29, 30, 45, 66, 68, 69, 71, 83, 91); dropping them maps the 171 used ids, in order, to
0..170. Unused ids and 255 become 255 (ignored). Each ``<name>.png`` gets a
``<name>_labelTrainIds.png`` next to it (the suffix ``COCOStuffDataset`` reads), as mmseg's own
converter writes them.

python tools/dataset_converters/coco_stuff164k.py data/coco_stuff164k [--nproc 8]
"""
import argparse
import glob
import io
import os.path as osp
from multiprocessing import Pool

import numpy as np
from PIL import Image

from clustseg.datasets.image_io import BadInputError
from clustseg.datasets.transforms import read_label_bytes

#: COCO category ids (1-based) of the 11 thing classes without annotations in COCO 2017
UNUSED_COCO_THING_IDS = (12, 26, 29, 30, 45, 66, 68, 69, 71, 83, 91)
NUM_RAW_IDS = 182  # 91 things + 91 stuff, stored as id - 1
SUFFIX = '_labelTrainIds.png'


def raw_to_train_id_lut() -> np.ndarray:
    """256-entry uint8 lookup table: stored raw id (COCO id - 1) -> train id 0..170, else 255."""
    unused = {i - 1 for i in UNUSED_COCO_THING_IDS}
    used = [i for i in range(NUM_RAW_IDS) if i not in unused]
    lut = np.full(256, 255, dtype=np.uint8)
    lut[used] = np.arange(len(used), dtype=np.uint8)
    return lut


LUT = raw_to_train_id_lut()


def convert_map(raw: np.ndarray) -> np.ndarray:
    """H x W uint8 raw stuffthingmap -> H x W uint8 train ids (0..170, 255)."""
    raw = np.asarray(raw)
    if raw.dtype != np.uint8 or raw.ndim != 2:
        raise ValueError(f'expected an H x W uint8 label map, got {raw.dtype} {raw.shape}')
    return LUT[raw]


def convert_file(path: str) -> str:
    """``<name>.png`` -> ``<name>_labelTrainIds.png`` (same folder); returns the new path.
    A missing, truncated, corrupt or non-uint8 single-channel map is a
    :class:`~clustseg.datasets.BadInputError` naming ``path``."""
    data = read_label_bytes(path)  # missing, empty, truncated or corrupt: an error naming it
    try:
        raw = np.array(Image.open(io.BytesIO(data)))
    except (OSError, SyntaxError, ValueError) as err:  # PIL: not an image, or undecodable
        raise BadInputError(path, f'cannot decode the label map: {err}') from err
    try:
        train_ids = convert_map(raw)
    except ValueError as err:
        raise BadInputError(path, str(err)) from err
    out = path[:-len('.png')] + SUFFIX
    Image.fromarray(train_ids).save(out)
    return out


def raw_label_files(root: str):
    """The raw maps under ``root/annotations/{train2017,val2017}`` (not already converted)."""
    files = []
    for split in ('train2017', 'val2017'):
        files += sorted(p for p in glob.glob(osp.join(root, 'annotations', split, '*.png'))
                        if not p.endswith(SUFFIX))
    return files


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('root', help='COCO-Stuff root (images/, annotations/{train2017,val2017})')
    p.add_argument('--nproc', type=int, default=1)
    args = p.parse_args(argv)
    files = raw_label_files(args.root)
    if not files:
        raise SystemExit(f'error: no label PNGs under {args.root}/annotations/'
                         '{train2017,val2017}')
    try:
        if args.nproc > 1:
            with Pool(args.nproc) as pool:
                pool.map(convert_file, files, chunksize=64)
        else:
            for f in files:
                convert_file(f)
    except BadInputError as err:  # a rerun converts every map again
        raise SystemExit(f'error: {err}') from None
    print(f'converted {len(files)} label maps')


if __name__ == '__main__':
    main()
