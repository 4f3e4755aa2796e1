"""CPU time of the shipped superpixel model: PyTorch vs onnxruntime (the ONNX export of
pre-processing -> hard labels), and of the whole ``clustseg.superpixels`` call with each
backend (plus the connectivity step, numpy, shared by both).

    python tools/analysis_tools/superpixel_onnx_speed.py \
        tests/data/bsds500/images/val/103070.jpg --k 600 --threads 1 --repeats 20

Prints a markdown table of median / min milliseconds over ``--repeats`` runs after
``--warmup`` runs (the ONNX export happens before the warm-up and is not timed) and the
number of hard-label pixels on which the two backends differ. A measurement, not a test.
"""
import argparse
import json
import statistics
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('image', help='an image file (e.g. a BSDS500 val image)')
    parser.add_argument('--k', type=int, default=600, help='number of superpixels K')
    parser.add_argument('--threads', type=int, default=1, help='torch / onnxruntime threads')
    parser.add_argument('--repeats', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--out', help='also write the numbers as JSON here')
    return parser.parse_args(argv)


def _time(fn, repeats, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return dict(median_ms=statistics.median(times), min_ms=min(times))


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    from clustseg.apis.superpixel_api import _post, load_superpixel_model, superpixels
    from clustseg.apis.superpixel_onnx import SuperpixelOnnxWrapper, onnx_session
    from clustseg.datasets import read_image
    torch.set_num_threads(args.threads)
    rgb = np.ascontiguousarray(read_image(args.image)[..., ::-1])
    h, w = rgb.shape[:2]
    model = load_superpixel_model('cpu')
    wrapper = SuperpixelOnnxWrapper(model, args.k).eval()
    x = torch.from_numpy(rgb)[None]
    sess = onnx_session(model, args.k, h, w, num_threads=args.threads)

    def torch_net():
        with torch.no_grad():
            return wrapper(x)[0].numpy()

    def ort_net():
        return sess.run(['labels'], {'image': rgb[None]})[0][0]

    hard = torch_net()
    rows = dict(
        torch_network=_time(torch_net, args.repeats, args.warmup),
        onnxruntime_network=_time(ort_net, args.repeats, args.warmup),
        connectivity=_time(lambda: _post(model, hard, args.k), args.repeats, args.warmup),
        superpixels_torch=_time(lambda: superpixels(rgb, args.k), args.repeats, args.warmup),
        superpixels_onnx=_time(lambda: superpixels(rgb, args.k, backend='onnx'), args.repeats,
                               args.warmup))
    diff = int((ort_net() != hard).sum())
    print(f'{args.image}: {h} x {w}, K = {args.k}, {args.threads} thread(s), '
          f'{args.repeats} runs after {args.warmup} warm-up; torch {torch.__version__}, '
          f'onnxruntime {__import__("onnxruntime").__version__}')
    print('| stage | median ms | min ms |\n|---|---|---|')
    for name, r in rows.items():
        print(f"| {name} | {r['median_ms']:.1f} | {r['min_ms']:.1f} |")
    ratio = rows['onnxruntime_network']['median_ms'] / rows['torch_network']['median_ms']
    print(f'onnxruntime / PyTorch (network): {ratio:.2f}x; hard labels differ on {diff} of '
          f'{hard.size} pixels')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(image=args.image, k=args.k, threads=args.threads, rows=rows,
                           ratio=ratio, differing_pixels=diff), f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
