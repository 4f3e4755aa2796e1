"""Convert BSDS500 (images/<split>/*.jpg + groundTruth/<split>/*.mat) to a folder dataset.

Output, per split: ``<out>/<split>/images/<id>.jpg`` (copied byte for byte) and
``<out>/<split>/labels/<id>.png`` (16-bit PNG of the first annotator) or, with
``--annotators all``, ``<id>_<k>.png`` for annotator ``k`` = 0, 1, ... This is the layout read by
``SuperpixelFolderDataset``. With one split, ``--no-split-dir`` writes ``<out>/{images,labels}``.
The dataset reads every file of these folders, so each run replaces their contents: files an
earlier conversion left there (other ids, the other annotator layout) are removed.

Example::

    python tools/dataset_converters/bsds_to_folder.py data/bsds500 data/bsds500_folder
    python tools/dataset_converters/bsds_to_folder.py data/bsds500 out --splits val \\
        --ids 101085 101087 --no-split-dir
"""
import argparse
import os
import os.path as osp
import shutil

import cv2
import numpy as np


def _load_module(*parts):
    # Import the module file directly: ``import clustseg`` would pull in torch and the models.
    import importlib.util
    path = osp.join(osp.dirname(__file__), '..', '..', 'clustseg', *parts)
    spec = importlib.util.spec_from_file_location('clustseg_' + parts[-1][:-3],
                                                  osp.abspath(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load_reader():
    return _load_module('datasets', 'bsds_io.py').load_bsds_segmentations


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('bsds_root', help='BSDS500 root holding images/ and groundTruth/')
    parser.add_argument('out_dir', help='output root')
    parser.add_argument('--splits', nargs='+', default=None,
                        help='splits to convert (default: every split found in images/)')
    parser.add_argument('--annotators', choices=['first', 'all'], default='first',
                        help="'first': <id>.png; 'all': <id>_<k>.png for every annotator k")
    parser.add_argument('--ids', nargs='+', default=None,
                        help='convert only these image ids (each must exist in every split given)')
    parser.add_argument('--no-split-dir', action='store_true',
                        help='write <out>/{images,labels} directly (needs exactly one split)')
    return parser.parse_args(argv)


def convert_split(bsds_root, split, out_dir, annotators='first', ids=None, reader=None):
    """Convert one split; returns the converted ids."""
    reader = reader or _load_reader()
    img_dir = osp.join(bsds_root, 'images', split)
    gt_dir = osp.join(bsds_root, 'groundTruth', split)
    if not osp.isdir(img_dir):
        raise FileNotFoundError(f'image folder not found: {img_dir}')
    if ids is None:
        ids = sorted(f[:-4] for f in os.listdir(img_dir) if f.endswith('.jpg'))
    out_img = osp.join(out_dir, 'images')
    out_lbl = osp.join(out_dir, 'labels')
    os.makedirs(out_img, exist_ok=True)
    os.makedirs(out_lbl, exist_ok=True)
    written = {out_img: [], out_lbl: []}
    for img_id in ids:
        img_path = osp.join(img_dir, img_id + '.jpg')
        mat_path = osp.join(gt_dir, img_id + '.mat')
        for p in (img_path, mat_path):
            if not osp.isfile(p):
                raise FileNotFoundError(f'not found: {p}')
        segs = reader(mat_path)
        if segs.min() < 0 or segs.max() > np.iinfo(np.uint16).max:
            raise ValueError(f'{mat_path}: labels {segs.min()}..{segs.max()} do not fit uint16')
        shutil.copyfile(img_path, osp.join(out_img, img_id + '.jpg'))
        written[out_img].append(img_id + '.jpg')
        if annotators == 'first':
            targets = [(img_id + '.png', segs[0])]
        else:
            targets = [(f'{img_id}_{k}.png', seg) for k, seg in enumerate(segs)]
        for name, seg in targets:
            path = osp.join(out_lbl, name)
            if not cv2.imwrite(path, seg.astype(np.uint16)):
                raise OSError(f'cannot write {path}')
            written[out_lbl].append(name)
    outputs = _load_module('utils', 'converter_outputs.py')
    outputs.report_removed([path for folder, names in written.items()
                            for path in outputs.remove_unwritten(folder, names)])
    return list(ids)


def main(argv=None):
    args = parse_args(argv)
    splits = args.splits
    if splits is None:
        img_root = osp.join(args.bsds_root, 'images')
        if not osp.isdir(img_root):
            raise FileNotFoundError(f'image folder not found: {img_root}')
        splits = sorted(d for d in os.listdir(img_root) if osp.isdir(osp.join(img_root, d)))
    if args.no_split_dir and len(splits) != 1:
        raise ValueError(f'--no-split-dir needs exactly one split, got {splits}')
    reader = _load_reader()
    for split in splits:
        out = args.out_dir if args.no_split_dir else osp.join(args.out_dir, split)
        done = convert_split(args.bsds_root, split, out, args.annotators, args.ids, reader)
        print(f'{split}: {len(done)} images -> {out}')


if __name__ == '__main__':
    main()
