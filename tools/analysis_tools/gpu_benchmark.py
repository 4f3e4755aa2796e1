"""The one-shot speed / memory comparison of ClustSeg and Mask2Former that a session with a
lent GPU runs (docs/benchmark.md, "One-shot GPU benchmark"), driven by
``tools/analysis_tools/gpu_benchmark.sh``; the measurements themselves are ``benchmark.py``'s
(``run_worker`` through ``run_jobs``: same data, same timing, same peak memory).

Cells, in the order they run (the most important first, so that a time budget that runs out
leaves the main comparison complete):

* panoptic, ClustSeg-R50 T = 3 and T = 1 against mmdet's Mask2Former-R50: inference (batch 1,
  ``--infer-size``, default 800 x 1333) in fp32 and under each ``--amp-dtypes`` autocast (bf16,
  fp16); training step (``--train-size`` S x S, default 1024, batch ``--batch`` 2) in fp32,
  with peak memory; and the T = 3 training step with point-supervised inner E-steps
  (``--inner-options``, ``InnerEStepPoints``) and with inner E-steps supervised through their
  assignment maps only (``--maps-options``, ``InnerEStepMaps``);
  T = 3 and Mask2Former inference in
  fp32 with the network part replayed from a CUDA graph (``benchmark.py --cuda-graph``; a
  forward that cannot be captured has its error as the result). Mask2Former under bf16 is tried
  last of the panoptic cells: mmcv's deformable-attention CUDA kernel has no bf16, and the
  error is recorded as the cell's result;
* semantic (ClustSeg-R50 ADE20K) and instance (ClustSeg-R50 COCO) rows: inference fp32 and bf16,
  training step fp32;
* extras while the budget lasts: ClustSeg T = 3 training step under bf16 autocast,
  Mask2Former's under fp16 AMP, and the Mask2Former-R50 semantic / instance references.

Writes ``gpu_benchmark.json`` and ``gpu_benchmark.md`` (one table + the target ratios) to
``--out-dir``. Everything is a parameter, so that the test runs the same script on the CPU with
the compact configs at 160 px and one iteration.
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import platform
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))


def _load_benchmark():
    spec = importlib.util.spec_from_file_location('clustseg_benchmark_tool',
                                                  osp.join(HERE, 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()

PANOPTIC = 'configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py'
REFERENCE = 'configs/reference/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'
SEMANTIC = 'configs/semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py'
SEMANTIC_REFERENCE = 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'
INSTANCE = 'configs/instance/clustseg_r50_8xb2-lsj-50e_coco.py'
INSTANCE_REFERENCE = 'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py'
T1_OPTION = 'model.panoptic_head.decoder.num_iters=1'
#: T = 3 with point-supervised inner E-steps (Mask2Former's 12544 points, at 1024^2)
INNER_OPTION = 'model.panoptic_head.deep_supervision.type=InnerEStepPoints'
#: T = 3 with the inner E-steps supervised through their assignment maps only
MAPS_OPTION = 'model.panoptic_head.deep_supervision.type=InnerEStepMaps'
#: the panoptic models infer with mmdet's panoptic post-processing only: with random weights
#: the instance post-processing's work depends on the draw (mmdet's mask2bbox reads each
#: non-empty mask's box on the host), not on the method, and differed between the models
PANOPTIC_TEST_OPTION = 'model.test_cfg.instance_on=False'

# the project's speed targets, panoptic: ratio name -> (comparison, target)
TARGETS = dict(
    infer_fp32_throughput=('>=', 1.2),
    infer_best_throughput=('>=', 1.5),
    train_step_time=('<=', 0.7),
    train_peak_memory=('<=', 1.0),
    t3_over_t1_train_step=('<=', 1.2),
    t3_inner_points_over_t1_train_step=('<=', 1.2),
    t3_inner_maps_over_t1_train_step=('<=', 1.2))


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto')
    p.add_argument('--infer-size', nargs=2, type=int, default=[800, 1333], metavar=('H', 'W'),
                   help='panoptic / instance inference size (default 800 1333)')
    p.add_argument('--train-size', type=int, default=1024, metavar='S',
                   help='panoptic / instance training size S x S (default 1024)')
    p.add_argument('--sem-infer-size', nargs=2, type=int, default=[640, 640],
                   metavar=('H', 'W'), help='semantic inference size (default 640 640)')
    p.add_argument('--sem-train-size', type=int, default=640, metavar='S',
                   help='semantic training size (default 640)')
    p.add_argument('--batch', type=int, default=2, help='training batch (default 2)')
    p.add_argument('--infer-warmup', type=int, default=5)
    p.add_argument('--infer-iters', type=int, default=20)
    p.add_argument('--train-warmup', type=int, default=3)
    p.add_argument('--train-iters', type=int, default=10)
    p.add_argument('--amp-dtypes', nargs='*', choices=['bf16', 'fp16'], default=['bf16', 'fp16'],
                   help='mixed precisions tried for panoptic inference (default bf16 fp16); '
                   'semantic / instance rows try the first')
    p.add_argument('--no-extras', action='store_true',
                   help='leave out the extra cells (mixed-precision training steps, Mask2Former '
                   'semantic / instance references)')
    p.add_argument('--panoptic', default=PANOPTIC, help='ClustSeg panoptic config (T = 3)')
    p.add_argument('--t1-options', nargs='+', default=[T1_OPTION], metavar='KEY=VALUE',
                   help=f'options that make the T = 1 variant (default {T1_OPTION})')
    p.add_argument('--inner-options', nargs='+', default=[INNER_OPTION], metavar='KEY=VALUE',
                   help='options that make the T = 3 variant with point-supervised inner '
                   f'E-steps (default {INNER_OPTION})')
    p.add_argument('--maps-options', nargs='+', default=[MAPS_OPTION], metavar='KEY=VALUE',
                   help='options that make the T = 3 variant whose inner E-steps are '
                   f'supervised through their assignment maps only (default {MAPS_OPTION})')
    p.add_argument('--panoptic-test-options', nargs='*', default=[PANOPTIC_TEST_OPTION],
                   metavar='KEY=VALUE',
                   help='options of both panoptic models (ClustSeg and Mask2Former) for their '
                   f'inference cells (default {PANOPTIC_TEST_OPTION}: panoptic post-processing '
                   'only; none: the configs\' own test_cfg)')
    p.add_argument('--reference', default=REFERENCE, help='Mask2Former panoptic config')
    p.add_argument('--semantic', default=SEMANTIC, help="ClustSeg semantic config ('' = none)")
    p.add_argument('--semantic-reference', default=SEMANTIC_REFERENCE,
                   help="extra: Mask2Former semantic config ('' = none)")
    p.add_argument('--instance', default=INSTANCE, help="ClustSeg instance config ('' = none)")
    p.add_argument('--instance-reference', default=INSTANCE_REFERENCE,
                   help="extra: Mask2Former instance config ('' = none)")
    p.add_argument('--msda', choices=['auto', 'kernel', 'pytorch'], default='auto',
                   help="Mask2Former's deformable attention on CUDA (benchmark.py --msda)")
    p.add_argument('--budget-s', type=float, default=300,
                   help='wall-clock budget of all cells (default 300 s); cells left when it '
                   'runs out are recorded as skipped')
    p.add_argument('--isolate', choices=['auto', 'shared', 'process'], default='auto',
                   help='shared: the cells in as few processes as possible (start-up paid once; '
                   'CUDA peak memory still per cell); process: one process per cell (CPU peak '
                   'RSS per cell). auto: shared on CUDA, process on CPU')
    p.add_argument('--threads', type=int, help='torch.set_num_threads in the workers')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', default=os.environ.get('OUT') or 'work_dirs/gpu_benchmark',
                   help='where gpu_benchmark.json / .md go (default $OUT)')
    return p


def make_cells(args):
    """The (task, model, phase, precision) cells in the order they run, each with its job."""
    pan = bench.parse_options(args.panoptic_test_options)
    t1_options = {**pan, **bench.parse_options(args.t1_options)}
    inner_options = {**pan, **bench.parse_options(args.inner_options)}
    maps_options = {**pan, **bench.parse_options(args.maps_options)}

    def model(label, config, default, options=None):
        # the default configs are the R50 ones; another config is named in the label
        name = label if config == default else f'{label} [{bench.config_label(config)}]'
        return dict(label=name, config=config, options=options or {})

    models = dict(
        t3=model('ClustSeg-R50 T=3', args.panoptic, PANOPTIC, pan),
        t1=model('ClustSeg-R50 T=1', args.panoptic, PANOPTIC, t1_options),
        t3p=model('ClustSeg-R50 T=3 inner points', args.panoptic, PANOPTIC, inner_options),
        t3m=model('ClustSeg-R50 T=3 inner maps', args.panoptic, PANOPTIC, maps_options),
        m2f=model('Mask2Former-R50', args.reference, REFERENCE, pan),
        sem=model('ClustSeg-R50', args.semantic, SEMANTIC),
        sem_ref=model('Mask2Former-R50', args.semantic_reference, SEMANTIC_REFERENCE),
        ins=model('ClustSeg-R50', args.instance, INSTANCE),
        ins_ref=model('Mask2Former-R50', args.instance_reference, INSTANCE_REFERENCE))
    amps = list(args.amp_dtypes)
    first_amp = amps[:1]
    order = [('panoptic', 't3', 'infer', 'none'), ('panoptic', 'm2f', 'infer', 'none'),
             ('panoptic', 't3', 'train', 'none'), ('panoptic', 'm2f', 'train', 'none'),
             ('panoptic', 't1', 'train', 'none'), ('panoptic', 't3p', 'train', 'none'),
             ('panoptic', 't3m', 'train', 'none'), ('panoptic', 't1', 'infer', 'none')]
    # fp32 with the network part of inference replayed from a CUDA graph (--cuda-graph of
    # benchmark.py): what each model gives without per-operator host cost, or the error that
    # keeps its forward from being captured (CUDA only)
    if args.device == 'cuda':
        order += [('panoptic', 't3', 'infer', 'graph'), ('panoptic', 'm2f', 'infer', 'graph')]
    order += [('panoptic', 't3', 'infer', a) for a in amps]
    order += [('panoptic', 'm2f', 'infer', a) for a in amps if a != 'bf16']
    order += [('panoptic', 't1', 'infer', a) for a in first_amp]
    # last of the panoptic cells: mmcv's deformable-attention CUDA kernel has no bf16 (the
    # error is the result; on CUDA the worker process is restarted after it)
    order += [('panoptic', 'm2f', 'infer', 'bf16')] if 'bf16' in amps else []
    for task, key in (('semantic', 'sem'), ('instance', 'ins')):
        order += [(task, key, 'infer', 'none')] + [(task, key, 'infer', a) for a in first_amp]
        order += [(task, key, 'train', 'none')]
    if not args.no_extras:
        order += [('panoptic', 't3', 'train', 'bf16'), ('panoptic', 'm2f', 'train', 'fp16')]
        for task, key in (('semantic', 'sem_ref'), ('instance', 'ins_ref')):
            order += [(task, key, 'infer', 'none'), (task, key, 'train', 'none')]
    cells = []
    for task, key, phase, amp in order:
        spec = models[key]
        if not spec['config']:
            continue
        semantic = task == 'semantic'
        graph = amp == 'graph'
        amp = 'none' if graph else amp
        job = dict(device=args.device, batch=args.batch, amp=amp, seed=args.seed,
                   threads=args.threads, global_options={}, msda=args.msda_resolved,
                   infer_size=list(args.sem_infer_size if semantic else args.infer_size),
                   train_size=args.sem_train_size if semantic else args.train_size,
                   warmup=args.infer_warmup if phase == 'infer' else args.train_warmup,
                   iters=args.infer_iters if phase == 'infer' else args.train_iters,
                   spec=dict(spec, label=f'{task}/{spec["label"]}'), phase=phase,
                   # operators per step of the fp32 panoptic and instance training cells
                   # and per image of the fp32 panoptic inference cells: one more step
                   # after the timed ones (benchmark.count_ops)
                   count_ops=amp == 'none' and not graph and (
                       task != 'semantic' and phase == 'train' or
                       task == 'panoptic' and phase == 'infer'),
                   cuda_graph=graph)
        precision = 'fp32 + CUDA graph' if graph else 'fp32' if amp == 'none' else amp
        cells.append(dict(task=task, key=key, model=spec['label'], config=spec['config'],
                          options=spec['options'], phase=phase, precision=precision, job=job))
    return cells


def _input(cell):
    job = cell['job']
    if cell['phase'] == 'infer':
        return f"1 x {job['infer_size'][0]}x{job['infer_size'][1]}"
    return f"{job['batch']} x {job['train_size']}x{job['train_size']}"


def _find(cells, task, key, phase, precision):
    for c in cells:
        if (c['task'], c['key'], c['phase'], c['precision']) == (task, key, phase, precision):
            return c['result']
    return None


def _ok(res, key):
    return res is not None and 'error' not in res and isinstance(res.get(key), (int, float))


def _best_infer(cells, key):
    """The fastest inference cell of a panoptic model (fp32, mixed, or fp32 with a CUDA graph),
    as (img/s, precision)."""
    best = None
    for c in cells:
        if c['task'] == 'panoptic' and c['key'] == key and c['phase'] == 'infer' and \
                _ok(c['result'], 'img_per_s'):
            if best is None or c['result']['img_per_s'] > best[0]:
                best = (c['result']['img_per_s'], c['precision'])
    return best


def compute_ratios(cells):
    """The target ratios, ClustSeg-R50 (T = 3) against Mask2Former-R50, panoptic."""
    ratios = {}

    def put(name, num, den, key, detail):
        value = num[key] / den[key] if _ok(num, key) and _ok(den, key) and den[key] else None
        op, target = TARGETS[name]
        reached = None if value is None else (value >= target if op == '>=' else
                                              value <= target)
        ratios[name] = dict(value=value, target=f'{op} {target}', reached=reached,
                            detail=detail)

    put('infer_fp32_throughput', _find(cells, 'panoptic', 't3', 'infer', 'fp32'),
        _find(cells, 'panoptic', 'm2f', 'infer', 'fp32'), 'img_per_s',
        'img/s ClustSeg T=3 / Mask2Former, fp32')
    b3, bm = _best_infer(cells, 't3'), _best_infer(cells, 'm2f')
    put('infer_best_throughput', b3 and dict(img_per_s=b3[0]), bm and dict(img_per_s=bm[0]),
        'img_per_s', 'img/s, each in its fastest precision: ClustSeg T=3 '
        f'{b3[1] if b3 else "n/a"}, Mask2Former {bm[1] if bm else "n/a"}')
    t3 = _find(cells, 'panoptic', 't3', 'train', 'fp32')
    m2f = _find(cells, 'panoptic', 'm2f', 'train', 'fp32')
    put('train_step_time', t3, m2f, 's_per_iter', 's/step ClustSeg T=3 / Mask2Former, fp32')
    put('train_peak_memory', t3, m2f, 'peak_mem_mb',
        'training peak memory ClustSeg T=3 / Mask2Former, fp32')
    put('t3_over_t1_train_step', t3, _find(cells, 'panoptic', 't1', 'train', 'fp32'),
        's_per_iter', 's/step ClustSeg T=3 / T=1, fp32')
    put('t3_inner_points_over_t1_train_step', _find(cells, 'panoptic', 't3p', 'train', 'fp32'),
        _find(cells, 'panoptic', 't1', 'train', 'fp32'), 's_per_iter',
        's/step ClustSeg T=3 with point-supervised inner E-steps / T=1, fp32')
    put('t3_inner_maps_over_t1_train_step', _find(cells, 'panoptic', 't3m', 'train', 'fp32'),
        _find(cells, 'panoptic', 't1', 'train', 'fp32'), 's_per_iter',
        's/step ClustSeg T=3 with map-supervised inner E-steps / T=1, fp32')
    return ratios


def _options(options):
    return ', '.join(f'{k}={v}' for k, v in options.items()) if options else "configs' test_cfg"


def _fmt(value, digits):
    return f'{value:.{digits}f}' if isinstance(value, (int, float)) else 'n/a'


def format_markdown(results):
    meta = results['meta']
    lines = [f"# Speed / memory: ClustSeg vs Mask2Former ({meta['device_name']})", '',
             f"{meta['date']} | code {meta['code']} | torch {meta['torch']} | device "
             f"{meta['device']} | memory: {meta['mem_kind']} | MSDeformAttn: {meta['msda']} | "
             f"inference warmup {meta['infer_warmup']}, iters {meta['infer_iters']} | training "
             f"warmup {meta['train_warmup']}, iters {meta['train_iters']} | random init | "
             f"panoptic models: {_options(meta.get('panoptic_test_options'))} | "
             f"{meta['elapsed_s']:.0f} s", '',
             '| task | model | phase | precision | input | ms/img or s/step | img/s '
             '| peak mem (MB) |', '|---|---|---|---|---|---:|---:|---:|']
    notes = []
    for cell in results['cells']:
        res = cell['result']
        if cell['phase'] == 'infer':
            time_cell = _fmt(res.get('ms_per_img'), 1)
        else:
            time_cell = _fmt(res.get('s_per_iter'), 3)
        lines.append(f"| {cell['task']} | {cell['model']} | {cell['phase']} | "
                     f"{cell['precision']} | {cell['input']} | {time_cell} | "
                     f"{_fmt(res.get('img_per_s'), 2)} | {_fmt(res.get('peak_mem_mb'), 0)} |")
        if 'error' in res:
            notes.append(f"{cell['task']} / {cell['model']} / {cell['phase']} / "
                         f"{cell['precision']}: {res['error']}")
    for phase, what in (('train', 'training step'), ('infer', 'inference image')):
        ops = [f"- {c['task']} {c['model']}: {c['result']['ops']} "
               f"({c['result']['ops'] - c['result']['view_ops']} non-view, "
               f"{c['result']['data_dependent_ops']} data-dependent)"
               for c in results['cells'] if 'ops' in c['result'] and c['phase'] == phase]
        if ops:
            lines += ['', f'Operators per {what} (fp32, one more after the timed ones):'] + ops
    post = [f"- {c['task']} {c['model']} {c['precision']}: "
            + ', '.join(f"{k[len('post_'):].replace('_', ' ')} {c['result'][k]:.1f}"
                        for k in bench.POST_KEYS if k in c['result'])
            for c in results['cells']
            if c['phase'] == 'infer' and any(k in c['result'] for k in bench.POST_KEYS)]
    if post:
        lines += ['', 'Post-processing per image (random weights: the counts depend on the '
                  'draw; compare times at equal loads):'] + post
    lines += ['', '| ratio (panoptic) | value | target | reached |', '|---|---:|---|---|']
    for name, r in results['ratios'].items():
        reached = 'n/a' if r['reached'] is None else ('yes' if r['reached'] else 'no')
        lines.append(f"| {r['detail']} | {_fmt(r['value'], 2)} | {r['target']} | {reached} |")
    if notes:
        lines += ['', 'n/a:'] + [f'- {n}' for n in notes]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    args = build_parser().parse_args(argv)
    os.environ.setdefault('CLUSTSEG_OFFLINE_WEIGHTS', 'none')  # never download (README)
    import torch
    if args.device == 'auto':
        args.device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('error: --device cuda but CUDA is not available')
    isolate = args.isolate if args.isolate != 'auto' else \
        ('shared' if args.device == 'cuda' else 'process')
    start = time.monotonic()
    args.msda_resolved = bench.resolve_msda(args.msda, args.device)
    cells = make_cells(args)
    try:  # fail before any run on a missing config or an unknown key
        seen = set()
        for cell in cells:
            spec = cell['job']['spec']
            ident = (spec['config'], json.dumps(spec['options'], sort_keys=True))
            if ident not in seen:
                seen.add(ident)
                bench.make_task(bench.load_config(spec, {}))
    except bench.BenchmarkError as e:
        sys.exit(f'error: {e}')

    def progress(job, res):
        what = f"{job['spec']['label']} {job['phase']} {job['amp']}"
        if 'error' in res:
            print(f'[gpu_benchmark] {what}: n/a ({res["error"][:200]})', file=sys.stderr,
                  flush=True)
        else:
            value = res.get('ms_per_img') or res.get('s_per_iter')
            print(f'[gpu_benchmark] {what}: {value:.4g} {"ms" if job["phase"] == "infer" else "s"}'
                  f', peak {_fmt(res.get("peak_mem_mb"), 0)} MB '
                  f'({time.monotonic() - start:.0f} s)', file=sys.stderr, flush=True)

    jobs = [c['job'] for c in cells]
    left = args.budget_s - (time.monotonic() - start)
    if isolate == 'shared':
        results = bench.run_jobs(jobs, timeout=left, progress=progress)
    else:  # one process per cell, within the same budget
        results = []
        for job in jobs:
            left = args.budget_s - (time.monotonic() - start)
            results += bench.run_jobs([job], timeout=left, progress=progress) if left > 0 else \
                [dict(phase=job['phase'], error='skipped: the time budget ran out',
                      skipped=True)]
    out_cells = []
    for cell, res in zip(cells, results):
        res = {k: v for k, v in res.items() if k != 'log_tail'} | (
            {'log_tail': res['log_tail'][-600:]} if 'log_tail' in res else {})
        out_cells.append(dict({k: v for k, v in cell.items() if k != 'job'},
                              input=_input(cell), result=res))
    device_name = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)'
    meta = dict(device=args.device, device_name=device_name, torch=torch.__version__,
                msda=args.msda_resolved, mmcv_cuda_ops=args.msda_resolved == 'kernel',
                isolate=isolate, budget_s=args.budget_s, elapsed_s=time.monotonic() - start,
                infer_warmup=args.infer_warmup, infer_iters=args.infer_iters,
                train_warmup=args.train_warmup, train_iters=args.train_iters,
                batch=args.batch, seed=args.seed,
                panoptic_test_options=bench.parse_options(args.panoptic_test_options),
                threads=args.threads or torch.get_num_threads(),
                mem_kind='torch.cuda.max_memory_allocated' if args.device == 'cuda' else
                'peak RSS of the worker process',
                load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
                date=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()),
                code=bench.git_version(), argv=sys.argv[1:] if argv is None else list(argv))
    results = dict(meta=meta, cells=out_cells, ratios=compute_ratios(out_cells))
    os.makedirs(args.out_dir, exist_ok=True)
    with open(osp.join(args.out_dir, 'gpu_benchmark.json'), 'w') as f:
        json.dump(results, f, indent=2)
    markdown = format_markdown(results)
    with open(osp.join(args.out_dir, 'gpu_benchmark.md'), 'w') as f:
        f.write(markdown)
    print(markdown)
    return results


if __name__ == '__main__':
    main()
