"""Superpixel inference time: a ClustSeg superpixel model vs skimage SLIC, same images, same
process, per stage.

For every thread setting (``--threads``; 0 = all cores) the tool sets
``torch.set_num_threads`` and runs, on each image (decoded to memory beforehand, for both
methods):

* the model: pre-processing (test pipeline + data preprocessor), backbone, pixel decoder,
  initializer + decoder, embedding head (incl. the Lab conversion), final E/M, hard labels,
  connectivity step (``SuperpixelSegmentor.superpixels``'s ``timer`` hook);
* SLIC: ``slic_superpixels`` (skimage, ``n_segments=K``, ``compactness``, the benchmark
  settings of ``superpixel_curve.py``: Lab conversion and connectivity included).

It prints a table (mean ms per image per stage, the ratio model / SLIC) and writes JSON.
With ``--backend onnx`` the model's network runs as its ONNX export in onnxruntime
(:func:`clustseg.apis.superpixel_onnx.onnx_hard_labels`, on the same number of threads; the
export of each image size is made during the warm-up, not timed): its stages are
``network`` (RGB uint8 -> hard labels) and ``connectivity``.

Example::

    python tools/analysis_tools/superpixel_speed.py \\
        configs/superpixel/clustseg_compact_1xb4-1.2k_bsds500-superpixel.py \\
        checkpoints/clustseg_compact_1xb4-1.2k_bsds500-superpixel.pth \\
        --images tests/data/bsds500/images --k 600 --threads 1 0 --out speed.json
"""
import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from clustseg.evaluation.functional import CONTRIB_METHODS

TORCH_STAGES = ('preprocess', 'backbone', 'pixel_decoder', 'initializer_decoder',
                'embed_head', 'final_em', 'hard_labels', 'connectivity')
ONNX_STAGES = ('network', 'connectivity')  # --backend onnx
STAGES = TORCH_STAGES[:-1] + ONNX_STAGES
IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--images', nargs='+', required=True,
                   help='image files or folders (searched recursively)')
    p.add_argument('--k', type=int, default=600, help='superpixels K (model and SLIC)')
    p.add_argument('--threads', type=int, nargs='+', default=[1, 0],
                   help='torch thread counts to measure, 0 = all cores (default: 1 0)')
    p.add_argument('--max-images', type=int, default=None)
    p.add_argument('--warmup', type=int, default=1, help='untimed runs before timing')
    p.add_argument('--slic-compactness', type=float, default=10.0)
    p.add_argument('--contrib-baselines', nargs='+', default=[],
                   choices=sorted(CONTRIB_METHODS),
                   help='also time these OpenCV-contrib methods (needs cv2.ximgproc, see '
                        'clustseg.evaluation.functional.lsc_superpixels)')
    p.add_argument('--final-em-mode', choices=['local', 'dense'], default=None,
                   help="override the model's final_em_mode")
    p.add_argument('--fuse-conv-bn', action='store_true',
                   help="fold every eval-mode BN into its conv first (mmcv's fuse_conv_bn): "
                        'same superpixels, fewer full-resolution passes')
    p.add_argument('--backend', choices=['torch', 'onnx'], default='torch',
                   help="the model's network in PyTorch (per stage) or as its ONNX export in "
                   'onnxruntime (network + connectivity)')
    p.add_argument('--cfg-options', nargs='+', default=[],
                   help='key=value config overrides (as tools/test.py)')
    p.add_argument('--out', default=None, help='JSON output path')
    args = p.parse_args(argv)
    if args.k < 1:
        p.error(f'--k must be >= 1, got {args.k}')
    if any(t < 0 for t in args.threads):
        p.error(f'--threads must be >= 0 (0 = all cores), got {args.threads}')
    return args


def find_images(paths, max_images=None):
    files = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob('*') if f.suffix.lower() in IMAGE_EXTS)
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f'--images: {p} does not exist')
    if not files:
        raise FileNotFoundError(f'--images: no images under {paths}')
    return files[:max_images] if max_images else files


class StageTimer:
    """Called with a stage name at the end of each stage; keeps the time since the previous
    call (``perf_counter``)."""

    def __init__(self):
        self.times = {}
        self.t = time.perf_counter()

    def __call__(self, stage):
        now = time.perf_counter()
        self.times[stage] = self.times.get(stage, 0.0) + now - self.t
        self.t = now


def _cfg_options(opts):
    out = {}
    for o in opts:
        if '=' not in o:
            raise ValueError(f'--cfg-options entries must be key=value, got {o!r}')
        k, v = o.split('=', 1)
        try:
            v = json.loads(v)
        except json.JSONDecodeError:
            pass
        out[k] = v
    return out


def build_model(args):
    from clustseg.apis import init_model
    opts = _cfg_options(args.cfg_options)
    if args.final_em_mode:
        opts['model.final_em_mode'] = args.final_em_mode
    model = init_model(args.config, args.checkpoint, device='cpu', cfg_options=opts or None)
    model.eval()
    if args.fuse_conv_bn:
        from mmcv.cnn import fuse_conv_bn
        model = fuse_conv_bn(model)
    return model


@torch.no_grad()
def run_model(model, img, k):
    """One image (H x W x 3 BGR uint8) -> (labels H x W, {stage: seconds})."""
    from clustseg.apis.inference import _preprocess
    timer = StageTimer()
    batch = _preprocess(model, img)
    timer('preprocess')
    labels = model.superpixels(batch['inputs'], k, timer=timer)[0]
    return labels, timer.times


def run_model_onnx(model, img, k):
    """``run_model`` with the network in onnxruntime (``--backend onnx``)."""
    from clustseg.apis.superpixel_api import _post
    from clustseg.apis.superpixel_onnx import onnx_hard_labels
    t0 = time.perf_counter()
    hard = onnx_hard_labels(model, img[..., ::-1], k)
    t1 = time.perf_counter()
    labels = _post(model, hard, k)
    return labels, dict(network=t1 - t0, connectivity=time.perf_counter() - t1)


def run_slic(img, k, compactness):
    from clustseg.evaluation.functional.superpixel import slic_superpixels
    t = time.perf_counter()
    labels = slic_superpixels(img, k, compactness=compactness)
    return labels, time.perf_counter() - t


def run_contrib(name, img, k):
    fn = CONTRIB_METHODS[name]
    t = time.perf_counter()
    labels = fn(img, k)
    return labels, time.perf_counter() - t


def measure(model, images, k, threads, compactness, warmup=1, contrib=(), backend='torch'):
    """All images at one thread count -> dict of per-image times (seconds) and counts."""
    torch.set_num_threads(threads)
    run = run_model_onnx if backend == 'onnx' else run_model
    # the warm-up runs on the first image of each size (the onnx backend exports per size)
    firsts = list({img.shape[:2]: img for _, img in reversed(images)}.values())
    for _ in range(warmup):
        for img in firsts:
            run(model, img, k)
        run_slic(images[0][1], k, compactness)
        for c in contrib:
            run_contrib(c, images[0][1], k)
    per_image = []
    for name, img in images:
        labels, stages = run(model, img, k)
        slic_labels, slic_t = run_slic(img, k, compactness)
        row = dict(image=name, hw=list(img.shape[:2]), model=stages,
                   model_total=sum(stages.values()), model_count=int(labels.max()) + 1,
                   slic=slic_t, slic_count=int(slic_labels.max()) + 1, contrib={})
        for c in contrib:
            c_labels, c_t = run_contrib(c, img, k)
            row['contrib'][c] = dict(seconds=c_t, count=int(c_labels.max()) + 1)
        per_image.append(row)
    mean = {s: float(np.mean([r['model'].get(s, 0.0) for r in per_image])) for s in STAGES}
    model_total = float(np.mean([r['model_total'] for r in per_image]))
    slic = float(np.mean([r['slic'] for r in per_image]))
    return dict(threads=threads, backend=backend, images=len(per_image), stages_mean_s=mean,
                model_mean_s=model_total, slic_mean_s=slic, ratio=model_total / slic,
                model_count_mean=float(np.mean([r['model_count'] for r in per_image])),
                slic_count_mean=float(np.mean([r['slic_count'] for r in per_image])),
                contrib={c: dict(mean_s=float(np.mean([r['contrib'][c]['seconds']
                                                       for r in per_image])),
                                 count_mean=float(np.mean([r['contrib'][c]['count']
                                                           for r in per_image])))
                         for c in contrib},
                per_image=per_image)


def format_table(results, k):
    cols = [f"{r['threads']} thr" for r in results]
    lines = [f'mean ms per image (K = {k})'.ljust(26) + ''.join(c.rjust(12) for c in cols)]
    for s in STAGES:
        if not any(r['stages_mean_s'][s] for r in results):
            continue
        lines.append(f'  model: {s}'.ljust(26)
                     + ''.join(f"{1e3 * r['stages_mean_s'][s]:12.1f}" for r in results))
    lines.append('model total'.ljust(26) + ''.join(f"{1e3 * r['model_mean_s']:12.1f}"
                                                   for r in results))
    lines.append('SLIC (skimage)'.ljust(26) + ''.join(f"{1e3 * r['slic_mean_s']:12.1f}"
                                                      for r in results))
    for c in results[0]['contrib']:
        lines.append(f'{c} (OpenCV contrib)'.ljust(26) + ''.join(
            f"{1e3 * r['contrib'][c]['mean_s']:12.1f}" for r in results))
    lines.append('ratio model / SLIC'.ljust(26) + ''.join(f"{r['ratio']:12.2f}"
                                                          for r in results))
    lines.append('superpixels: model'.ljust(26) + ''.join(f"{r['model_count_mean']:12.1f}"
                                                          for r in results))
    lines.append('superpixels: SLIC'.ljust(26) + ''.join(f"{r['slic_count_mean']:12.1f}"
                                                         for r in results))
    for c in results[0]['contrib']:
        lines.append(f'superpixels: {c}'.ljust(26) + ''.join(
            f"{r['contrib'][c]['count_mean']:12.1f}" for r in results))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    from clustseg.datasets import read_image
    files = find_images(args.images, args.max_images)
    images = [(str(f), read_image(str(f))) for f in files]  # decoded once, for both methods
    model = build_model(args)
    results = []
    for t in args.threads:
        n = t or os.cpu_count()
        results.append(measure(model, images, args.k, n, args.slic_compactness, args.warmup,
                               args.contrib_baselines, args.backend))
    table = format_table(results, args.k)
    print(table)
    load = os.getloadavg() if hasattr(os, 'getloadavg') else None
    report = dict(config=args.config, checkpoint=args.checkpoint, k=args.k, backend=args.backend,
                  final_em_mode=model.final_em_mode, fuse_conv_bn=args.fuse_conv_bn,
                  slic_compactness=args.slic_compactness,
                  cpu_count=os.cpu_count(), load_avg_at_end=load, torch=torch.__version__,
                  python=sys.version.split()[0], machine=platform.platform(),
                  results=results)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)
        print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
