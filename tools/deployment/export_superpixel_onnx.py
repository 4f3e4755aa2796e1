"""Export the shipped superpixel network to ONNX (pre-processing -> hard labels before the
connectivity step) at a fixed image size and K; optionally check it against PyTorch with
onnxruntime.

    python tools/deployment/export_superpixel_onnx.py work_dirs/sp_321x481_k600.onnx \
        --height 321 --width 481 --n-segments 600 --check tests/data/bsds500/images/val/103070.jpg

Graph: input ``image`` (1 x H x W x 3 uint8 RGB), output ``labels`` (1 x H x W int64 center
ids); finish with ``clustseg.models.utils.enforce_connectivity`` (min_size =
round(0.25 H W / K)). Why the size and K are fixed: :mod:`clustseg.apis.superpixel_onnx`.
"""
import argparse
import sys

import numpy as np


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('out', help='the .onnx file to write')
    parser.add_argument('--height', type=int, required=True, help='image height H')
    parser.add_argument('--width', type=int, required=True, help='image width W')
    parser.add_argument('--n-segments', type=int, default=600, help='K (default 600)')
    parser.add_argument('--check', metavar='IMAGE',
                        help='an H x W image: compare onnxruntime with PyTorch on it')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import onnx
    import torch

    from clustseg.apis.superpixel_api import load_superpixel_model
    from clustseg.apis.superpixel_onnx import export_superpixel_onnx, onnx_session
    model = load_superpixel_model('cpu')
    export_superpixel_onnx(model, args.out, args.n_segments, args.height, args.width)
    onnx.checker.check_model(args.out)
    print(f'wrote {args.out} (input image: 1 x {args.height} x {args.width} x 3 uint8 RGB, '
          f'output labels: 1 x {args.height} x {args.width} int64, K = {args.n_segments})')
    if args.check:
        from clustseg.apis.superpixel_api import superpixels
        from clustseg.datasets import read_image
        rgb = np.ascontiguousarray(read_image(args.check)[..., ::-1])
        if rgb.shape[:2] != (args.height, args.width):
            print(f'{args.check}: {rgb.shape[0]} x {rgb.shape[1]} is not the exported '
                  f'{args.height} x {args.width}', file=sys.stderr)
            return 2
        with torch.no_grad():
            _, soft = superpixels(rgb, args.n_segments, return_soft=True)
        sess = onnx_session(model, args.n_segments, args.height, args.width)
        ort = sess.run(['labels'], {'image': rgb[None]})[0][0]
        diff = int((ort != soft['hard'].numpy()).sum())
        print(f'onnxruntime vs PyTorch hard labels: {diff} of {ort.size} pixels differ')
    return 0


if __name__ == '__main__':
    sys.exit(main())
