"""Superpixels of one image, drawn as boundaries over it.

python demo/image_demo.py IMG CONFIG CHECKPOINT --num-superpixels 600 --out-file out.png
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clustseg.apis import inference_superpixel, init_model
from clustseg.datasets import BadInputError, read_image
from clustseg.visualization import SuperpixelVisualizer


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='ClustSeg superpixel demo')
    p.add_argument('img', help='input image')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--num-superpixels', type=int, default=None,
                   help='number of superpixels K (default: the config\'s test_cfg)')
    p.add_argument('--out-file', default='superpixels.png', help='where to write the overlay')
    p.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--boundary-color', type=int, nargs=3, default=(255, 255, 0),
                   metavar=('R', 'G', 'B'))
    p.add_argument('--mean-color', action='store_true', help='fill superpixels with their mean')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for what, path in (('image', args.img), ('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            sys.exit(f'error: {what} file not found: {path}')
    if args.num_superpixels is not None and args.num_superpixels < 1:
        sys.exit(f'error: --num-superpixels must be >= 1, got {args.num_superpixels}')

    try:  # read as the dataset pipeline does (LoadImageChecked); a bad file names itself
        img = read_image(args.img)
    except BadInputError as err:
        sys.exit(f'error: bad input image: {err}')

    model = init_model(args.config, args.checkpoint, device=args.device)
    labels = inference_superpixel(model, img, num_superpixels=args.num_superpixels,
                                  img_path=args.img)

    sample = SegDataSample()
    sample.pred_superpixels = PixelData(data=torch.from_numpy(np.asarray(labels))[None])
    visualizer = SuperpixelVisualizer(name='clustseg_demo', boundary_color=args.boundary_color,
                                      fill_mean_color=args.mean_color)
    visualizer.add_datasample('demo', np.ascontiguousarray(img[..., ::-1]), sample,
                              draw_gt=False, out_file=args.out_file)
    print(f'{len(np.unique(labels))} superpixels -> {args.out_file}')


if __name__ == '__main__':
    main()
