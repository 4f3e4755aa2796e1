"""Superpixel quality vs. number of superpixels on BSDS500 or NYUv2 (cf. Figs. 4 and 5 of the
ClustSeg paper).

For every requested K this runs a ClustSeg superpixel model (unless ``--slic-only``),
skimage SLIC and a regular grid on the same images, evaluates ASA / UE / BR / BP / CO against
all annotators and writes ``curve.csv`` and ``curve.png`` to ``--out-dir``.

Example::

    python tools/analysis_tools/superpixel_curve.py CONFIG CHECKPOINT \
        --data-root data/bsds500 --split val --ks 200 400 600 800 1000 --out-dir work_dirs/curve
    python tools/analysis_tools/superpixel_curve.py --slic-only \
        --data-root data/bsds500 --out-dir work_dirs/curve_slic --max-images 20
    # NYUv2 (the folder written by tools/dataset_converters/nyuv2_superpixel.py)
    python tools/analysis_tools/superpixel_curve.py CONFIG CHECKPOINT --layout folder \
        --data-root data/nyuv2_superpixel/test --out-dir work_dirs/curve_nyuv2

Images and annotations are read by the dataset pipeline's own transforms
(``LoadImageChecked`` + ``LoadSuperpixelAnnotations``): a truncated, empty or non-image file,
or a missing / unusable annotation, is an error naming the file. With ``--skip-bad`` such
samples are skipped with a warning, counted, and listed in ``skipped.csv``.
"""
import argparse
import csv
import os
import os.path as osp
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
from mmengine.config import DictAction

from clustseg.evaluation.functional import (CONTRIB_METHODS, evaluate_superpixels,
                                            grid_superpixels, slic_superpixels)

MEASURES = ('ASA', 'UE', 'BR', 'BP', 'CO')
CSV_FIELDS = ('method', 'K', 'num_superpixels') + MEASURES + ('sec_per_image', 'num_images')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Superpixel ASA/UE/BR/BP/CO vs. number of superpixels on BSDS500 '
        '(model, SLIC and regular grid).')
    parser.add_argument('config', nargs='?', help='model config (omit with --slic-only)')
    parser.add_argument('checkpoint', nargs='?', help='model checkpoint (omit with --slic-only)')
    parser.add_argument('--data-root', required=True,
                        help="'bsds' layout: BSDS500 root with images/<split>/*.jpg and "
                        "groundTruth/<split>/*.mat; 'folder' layout: a folder with "
                        'images/<id><--img-suffix> and labels/<id>.png or labels/<id>_<k>.png '
                        '(one per annotator; SuperpixelFolderDataset)')
    parser.add_argument('--layout', default='bsds', choices=('bsds', 'folder'),
                        help="'folder': the NYUv2 converter's output (default: bsds)")
    parser.add_argument('--split', default='val',
                        help="split folder name of the 'bsds' layout (default: val)")
    parser.add_argument('--img-suffix', default='.png',
                        help="image file ending of the 'folder' layout (default: .png, as the "
                        'NYUv2 converter writes)')
    parser.add_argument('--ks', type=int, nargs='+', default=[200, 400, 600, 800, 1000],
                        help='requested numbers of superpixels')
    parser.add_argument('--out-dir', required=True, help='where curve.csv/curve.png go')
    parser.add_argument('--max-images', type=int, default=None,
                        help='use only the first N images (sorted by name)')
    parser.add_argument('--slic-only', action='store_true',
                        help='evaluate only the SLIC and grid baselines')
    parser.add_argument('--slic-compactness', type=float, default=10.0,
                        help='SLIC compactness (default: 10)')
    parser.add_argument('--no-grid', action='store_true', help='skip the regular-grid baseline')
    parser.add_argument('--contrib-baselines', nargs='+', default=[],
                        choices=sorted(CONTRIB_METHODS),
                        help='also evaluate these OpenCV-contrib methods (needs cv2.ximgproc, '
                        'see lsc_superpixels)')
    parser.add_argument('--device', default='cpu', help='device for the model (default: cpu)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                        help='override model config keys, e.g. '
                        'model.test_cfg.compactness=0.65')
    parser.add_argument('--skip-bad', action='store_true',
                        help='skip (with a warning) and count unreadable images and '
                        'annotations instead of stopping at the first; they are listed in '
                        'skipped.csv')
    args = parser.parse_args(argv)
    if not args.slic_only and (args.config is None or args.checkpoint is None):
        parser.error('CONFIG and CHECKPOINT are required unless --slic-only is given')
    if any(k < 1 for k in args.ks):
        parser.error(f'--ks must be positive, got {args.ks}')
    if args.max_images is not None and args.max_images < 1:
        parser.error(f'--max-images must be >= 1, got {args.max_images}')
    return args


def _split(dataset_cls, skip_bad: bool, max_images: Optional[int], **kwargs):
    """A superpixel dataset that loads like the test pipeline (see :func:`build_bsds_split`)."""
    from clustseg.datasets.transforms import LoadImageChecked, LoadSuperpixelAnnotations

    return dataset_cls(
        pipeline=[LoadImageChecked(),
                  LoadSuperpixelAnnotations(annotator='first', with_all=True)],
        test_mode=True, skip_bad=skip_bad, indices=max_images, serialize_data=False, **kwargs)


def build_bsds_split(data_root: str, split: str, max_images: Optional[int] = None,
                     skip_bad: bool = False):
    """A split of BSDS500 as a :class:`BSDS500Dataset` that loads like the test pipeline.

    Samples are sorted by image id; ``max_images`` keeps the first N (of the usable ones with
    ``skip_bad``). Each item is a dict with ``img`` (H x W x 3 uint8, BGR), ``gt_seg_maps``
    (A x H x W int64, all annotators) and ``img_path``.
    """
    from clustseg.datasets import BSDS500Dataset
    return _split(BSDS500Dataset, skip_bad, max_images, data_root=data_root,
                  data_prefix=dict(img_path=osp.join('images', split),
                                   seg_map_path=osp.join('groundTruth', split)))


def build_folder_split(data_root: str, img_suffix: str = '.png',
                       max_images: Optional[int] = None, skip_bad: bool = False):
    """``data_root/images`` and ``data_root/labels`` as a :class:`SuperpixelFolderDataset`
    that loads like :func:`build_bsds_split` (the layout of the NYUv2 converter)."""
    from clustseg.datasets import SuperpixelFolderDataset
    return _split(SuperpixelFolderDataset, skip_bad, max_images, data_root=data_root,
                  data_prefix=dict(img_path='images', seg_map_path='labels'),
                  img_suffix=img_suffix)


def load_samples(dataset) -> List[Dict]:
    """Images and GT stacks of every sample of ``dataset`` (see :func:`build_bsds_split`)."""
    samples = []
    for i in range(len(dataset)):
        res = dataset[i]
        samples.append(dict(img=res['img'], gts=res['gt_seg_maps'], path=res['img_path'],
                            name=osp.basename(res['img_path'])))
    return samples


def evaluate_method(name: str, fn: Callable[..., np.ndarray],
                    samples: Sequence[Dict], ks: Sequence[int]) -> List[Dict]:
    """Run ``fn(img_bgr, K, path) -> H x W labels`` for every K and image; mean measures per K.

    ``sec_per_image`` times ``fn`` only (not the evaluation).
    """
    rows = []
    for k in ks:
        per_image, seconds = [], 0.0
        for s in samples:
            t0 = time.perf_counter()
            labels = fn(s['img'], k, s.get('path'))
            seconds += time.perf_counter() - t0
            per_image.append(evaluate_superpixels(labels, s['gts']))
        row = dict(method=name, K=int(k), num_images=len(samples),
                   sec_per_image=seconds / len(samples),
                   num_superpixels=float(np.mean([r['num_superpixels'] for r in per_image])))
        for m in MEASURES:
            row[m] = float(np.mean([r[m] for r in per_image]))
        rows.append(row)
        print(f'{name:>10s} K={k:<5d} count={row["num_superpixels"]:8.1f} '
              f'ASA={row["ASA"]:.4f} BR={row["BR"]:.4f} CO={row["CO"]:.4f} '
              f'({row["sec_per_image"]:.3f} s/img)', flush=True)
    return rows


def write_csv(rows: Sequence[Dict], path: str) -> None:
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({
                k: (f'{row[k]:.6f}' if isinstance(row[k], float) else row[k])
                for k in CSV_FIELDS
            })


def plot_curve(rows: Sequence[Dict], path: str) -> None:
    """Three panels (ASA, BR, CO) vs. actual mean superpixel count, one line per method."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    methods = list(dict.fromkeys(r['method'] for r in rows))
    for ax, measure in zip(axes, ('ASA', 'BR', 'CO')):
        for method in methods:
            pts = sorted((r['num_superpixels'], r[measure]) for r in rows
                         if r['method'] == method)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker='o', ms=4, label=method)
        ax.set_xlabel('number of superpixels')
        ax.set_title(measure)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def format_table(rows: Sequence[Dict]) -> str:
    head = f'{"method":>10} {"K":>6} {"count":>8} ' + ' '.join(f'{m:>7}' for m in MEASURES) \
        + f' {"s/img":>8}'
    lines = [head, '-' * len(head)]
    for r in rows:
        lines.append(f'{r["method"]:>10} {r["K"]:>6d} {r["num_superpixels"]:>8.1f} ' +
                     ' '.join(f'{r[m]:>7.4f}' for m in MEASURES) +
                     f' {r["sec_per_image"]:>8.4f}')
    return '\n'.join(lines)


def write_skipped(skipped: Sequence, path: str) -> None:
    """``path,reason`` rows of the samples skipped with ``--skip-bad``."""
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(('path', 'reason'))
        writer.writerows(skipped)


def main(argv=None) -> List[Dict]:
    args = parse_args(argv)
    if args.layout == 'folder':
        dataset = build_folder_split(args.data_root, args.img_suffix, args.max_images,
                                     args.skip_bad)
        img_dir = osp.join(args.data_root, 'images')
    else:
        dataset = build_bsds_split(args.data_root, args.split, args.max_images, args.skip_bad)
        img_dir = osp.join(args.data_root, 'images', args.split)
    skipped = dataset.metainfo.get('skipped', [])
    samples = load_samples(dataset)
    print(f'{len(samples)} images from {img_dir}'
          + (f', {len(skipped)} bad one(s) skipped' if args.skip_bad else ''))
    methods = []
    if not args.slic_only:
        from clustseg.apis import inference_superpixel, init_model

        model = init_model(args.config, args.checkpoint, device=args.device,
                           cfg_options=args.cfg_options)
        methods.append(('ClustSeg', lambda img, k, path: inference_superpixel(
            model, img, num_superpixels=k, img_path=path)))
    compactness = args.slic_compactness
    methods.append(('SLIC', lambda img, k, path: slic_superpixels(
        img, k, compactness=compactness, channel_order='bgr')))
    for name in args.contrib_baselines:
        methods.append((name, lambda img, k, path, fn=CONTRIB_METHODS[name]: fn(img, k)))
    if not args.no_grid:
        methods.append(('Grid', lambda img, k, path: grid_superpixels(
            img.shape[0], img.shape[1], k)))

    rows = []
    for name, fn in methods:
        rows += evaluate_method(name, fn, samples, args.ks)
    for row in rows:
        row['num_skipped'] = len(skipped)
    os.makedirs(args.out_dir, exist_ok=True)
    csv_path = osp.join(args.out_dir, 'curve.csv')
    png_path = osp.join(args.out_dir, 'curve.png')
    write_csv(rows, csv_path)
    plot_curve(rows, png_path)
    print(format_table(rows))
    if args.skip_bad:
        skipped_path = osp.join(args.out_dir, 'skipped.csv')
        write_skipped(skipped, skipped_path)
        print(f'{len(skipped)} bad input(s) skipped (not in the means), listed in '
              f'{skipped_path}' + ''.join(f'\n  {p}: {r}' for p, r in skipped))
    print(f'wrote {csv_path} and {png_path}')
    return rows


if __name__ == '__main__':
    from clustseg.datasets import BadInputError
    try:
        main()
    except BadInputError as err:  # a bad image or annotation (see --skip-bad)
        sys.exit(f'error: bad input: {err}')
