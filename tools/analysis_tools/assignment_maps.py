"""Cluster assignment maps of every E-step of every decoder layer for one image (the paper's
Fig. 6).

python tools/analysis_tools/assignment_maps.py CONFIG CHECKPOINT IMG --out-dir maps

Writes ``layer{l}_iter{t}.png`` for every E-step ``t`` (0-based, T per layer) of every decoder
layer ``l`` (and, for a superpixel model, ``final_iter{t}.png`` for the full-resolution E-steps):
the argmax over clusters of that E-step's soft assignment, one colour per cluster (the same
colour for a cluster in every map), upsampled (nearest) to the image and blended over it, with
the cluster borders in white; plus ``grid.png``, all maps in one image (a row per layer, a
column per iteration). Works for panoptic / instance configs (a detector with a
``ClustSegHead``), semantic configs (a ``ClustSegSemanticHead``) and superpixel configs.
"""
import argparse
import os
import os.path as osp
import sys

import cv2
import mmcv
import numpy as np
import torch

from clustseg.apis import init_model
from clustseg.apis.inference import inference_assignments
from clustseg.datasets import BadInputError, read_image
from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError
from clustseg.visualization import superpixel_boundaries


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='ClustSeg assignment map of every E-step')
    p.add_argument('config', help='config file (panoptic, instance, semantic or superpixel)')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('img', help='input image')
    p.add_argument('--out-dir', required=True, help='folder for the PNGs')
    p.add_argument('--num-superpixels', type=int, default=None,
                   help="superpixel models: K (default: the config's test_cfg)")
    p.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--alpha', type=float, default=0.6,
                   help='weight of the cluster colours over the image (default 0.6)')
    p.add_argument('--no-borders', action='store_true', help='do not outline the clusters')
    p.add_argument('--tile-width', type=int, default=320,
                   help='width of each map in grid.png (default 320)')
    return p.parse_args(argv)


def cluster_palette(k):
    """K distinct RGB colours (K x 3 uint8): hues spaced by the golden ratio."""
    i = np.arange(k)
    hsv = np.stack([(i * 0.618034 % 1.0) * 180, 255 - 90 * (i % 3 == 1),
                    255 - 60 * (i % 2)], -1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def draw_assignment(img_rgb, labels, palette, alpha=0.6, borders=True):
    """img_rgb H x W x 3 uint8, labels H x W cluster ids -> H x W x 3 uint8 RGB blend."""
    out = (1 - alpha) * img_rgb.astype(np.float32) + alpha * palette[labels].astype(np.float32)
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if borders:
        out[superpixel_boundaries(labels)] = 255
    return out


def _tile(img_rgb, width, caption):
    """img resized to ``width`` (aspect kept) under a caption band -> h x width x 3."""
    h, w = img_rgb.shape[:2]
    height = max(1, int(round(h * width / w)))
    body = cv2.resize(img_rgb, (width, height), interpolation=cv2.INTER_AREA)
    band = np.full((22, width, 3), 255, np.uint8)
    cv2.putText(band, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([band, body], 0)


def make_grid(tiles, positions):
    """tiles (equal-size h x w x 3 arrays) at (row, col) positions -> one RGB grid image with
    white gaps; empty cells stay white."""
    th, tw = tiles[0].shape[:2]
    rows = max(r for r, _ in positions) + 1
    cols = max(c for _, c in positions) + 1
    gap = 4
    grid = np.full((rows * th + (rows - 1) * gap, cols * tw + (cols - 1) * gap, 3), 255,
                   np.uint8)
    for tile, (r, c) in zip(tiles, positions):
        y, x = r * (th + gap), c * (tw + gap)
        grid[y:y + th, x:x + tw] = tile
    return grid


def main(argv=None):
    """Returns the paths written: one PNG per E-step (decoder order, then full-resolution),
    then grid.png."""
    args = parse_args(argv)
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint),
                       ('image', args.img)):
        if not osp.isfile(path):
            sys.exit(f'error: {what} file not found: {path}')
    if args.num_superpixels is not None and args.num_superpixels < 1:
        sys.exit(f'error: --num-superpixels must be >= 1, got {args.num_superpixels}')
    if not 0.0 <= args.alpha <= 1.0:
        sys.exit(f'error: --alpha must be in [0, 1], got {args.alpha}')
    if args.tile_width < 16:
        sys.exit(f'error: --tile-width must be >= 16, got {args.tile_width}')
    try:  # read as the dataset pipeline does; a bad file names itself
        img = read_image(args.img)
    except BadInputError as err:
        sys.exit(f'error: bad input image: {err}')

    model = init_model(args.config, args.checkpoint, device=args.device)
    try:
        maps = inference_assignments(model, img, num_superpixels=args.num_superpixels,
                                     img_path=args.img)
    except (TypeError, TooManySuperpixelsError) as err:
        sys.exit(f'error: {err}')

    os.makedirs(args.out_dir, exist_ok=True)
    img_rgb = np.ascontiguousarray(img[..., ::-1])
    palette = cluster_palette(max(m['num_clusters'] for m in maps))
    width = min(args.tile_width, img.shape[1])
    num_layers = 1 + max((m['layer'] for m in maps if m['stage'] == 'decoder'), default=-1)
    written, tiles, positions = [], [], []
    for m in maps:
        drawn = draw_assignment(img_rgb, m['labels'], palette, args.alpha, not args.no_borders)
        path = osp.join(args.out_dir, f"{m['name']}.png")
        mmcv.imwrite(drawn[..., ::-1], path)
        written.append(path)
        used = len(np.unique(m['labels']))
        where = f"layer {m['layer']}" if m['stage'] == 'decoder' else 'full res'
        print(f"{m['name']}: {where}, iter {m['iter']}, {m['hw'][0]}x{m['hw'][1]} map, "
              f"{used}/{m['num_clusters']} clusters used -> {path}")
        row = m['layer'] if m['stage'] == 'decoder' else num_layers
        tiles.append(_tile(drawn, width, f"{where}, iter {m['iter']} ({used} used)"))
        positions.append((row, m['iter']))
    grid_path = osp.join(args.out_dir, 'grid.png')
    mmcv.imwrite(make_grid(tiles, positions)[..., ::-1], grid_path)
    written.append(grid_path)
    print(f'{len(maps)} assignment maps + grid -> {args.out_dir}')
    return written


if __name__ == '__main__':
    main()
