"""Held-out benchmarks (docs/model_zoo.md "Held-out benchmarks"): train ClustSeg, its
Mask2Former twin and the paper's ablations on a small real benchmark, one run at a time, select
each run's checkpoint on val and score it once on the held-out split; then tabulate and plot.

    python tools/analysis_tools/heldout_benchmark.py run camvid [--runs NAME...] [--seeds 0 1]
    (without --runs the ablations train with the first seed only; named runs with every seed)
    python tools/analysis_tools/heldout_benchmark.py report camvid [--figure F.png] [--json F]
    python tools/analysis_tools/heldout_benchmark.py ship camvid [--ship-dir checkpoints/heldout]

``run`` is resumable and kill-safe: each run trains with ``tools/train.py --resume auto`` in
``WORK_ROOT/BENCHMARK/RUN_sSEED`` (a killed run continues from its last checkpoint), writes
``train_done`` when training ended, then scores the checkpoint with the best val metric on the
held-out split with ``tools/test.py`` into ``test_metrics.json``; a run with that file is skipped.
Runs go one after the other (one heavy job at a time on a small machine), or ``--jobs N`` at a
time on a larger one. ``--cfg-options`` is passed to every run (the tests shrink the budget
with it).

``report`` reads every run's logs (``*/vis_data/scalars.json`` of each start, in order): the val
metric at each validation against the iteration and against the training time (iterations x
the median logged seconds per iteration; validation excluded), the best val point, and the
held-out metric; prints one markdown table per benchmark (mean and half-range over seeds), then
every run against ClustSeg, or against the run :data:`REFERENCES` names for it (mean ± sd, and
per compared metric the difference of the means with its Welch standard error), and draws the
curves.

``ship`` publishes, for ClustSeg and Mask2Former, the scored checkpoint of the seed with the
best val metric ('best' benchmarks; 'last' benchmarks: the first seed) as
``SHIP_DIR/<config name>.pth`` (weights only, ``tools/model_converters/publish_model.py``), so
that ``tools/test.py CONFIG SHIP_DIR/<config name>.pth`` re-scores the held-out split.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
from math import sqrt
from statistics import mean, median, stdev, variance

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

#: the paper's ablations (Table 4b-d) run on the semantic and panoptic benchmarks
ABLATIONS = ('T1', 'learned-queries', 'vanilla-attn', 'kmeans-attn')
#: the cheap inner-E-step supervisions (InnerEStepPoints, InnerEStepMaps),
#: checked on the panoptic benchmark against the full supervision before any config adopts one
INNER = ('inner-points', 'inner-maps')
#: semantic diagnostics of the gap to Mask2Former on CamVid's small classes (docs/model_zoo.md)
DIAGNOSTICS = ('bank-stride8', 'ce1-dice5', 'bank-pos')
#: panoptic diagnostics of ClustSeg's gap on stuff: learned stuff queries with adaptive things,
#: and memory-bank stuff centers with learned query positions
PANOPTIC_DIAGNOSTICS = ('learned-stuff', 'bank-pos')
#: loss balances of the reference implementations, checked on the panoptic benchmark before the
#: recipes adopt one: kMaX-DeepLab's instance discrimination once per supervised prediction,
#: and its void rule on the point-sampled thing / stuff terms
LOSS_CHECKS = ('insdis-per-prediction', 'points-ignore-void')
#: benchmark -> (val / held-out metric key, its label, checkpoint scored on the held-out split
#: ('best' by the val metric or the 'last'), {run name: config})
BENCHMARKS = {
    'camvid': ('mIoU', 'mIoU', 'best', {
        'clustseg': 'configs/semantic/clustseg_compact_1xb8-1k_camvid-240x180.py',
        'mask2former': 'configs/reference/mask2former_compact_1xb8-1k_camvid-240x180.py',
        **{f'clustseg_{a}': f'configs/semantic/ablations/clustseg_compact_{a}_1xb8-1k_'
                            'camvid-240x180.py' for a in ABLATIONS + DIAGNOSTICS},
    }),
    'camvid-panoptic': ('coco_panoptic/PQ', 'PQ', 'best', {
        'clustseg': 'configs/panoptic/clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py',
        'mask2former': 'configs/reference/mask2former_compact_1xb8-1k_camvid-panoptic-240x180.py',
        **{f'clustseg_{a}': f'configs/panoptic/ablations/clustseg_compact_{a}_1xb8-1k_'
                            'camvid-panoptic-240x180.py'
           for a in ABLATIONS + INNER + PANOPTIC_DIAGNOSTICS + LOSS_CHECKS},
    }),
    # no val split: the validations run on the training images, the last checkpoint is scored
    'coco128': ('coco/segm_mAP', 'mask AP', 'last', {
        'clustseg': 'configs/instance/clustseg_compact_1xb8-1k_coco128-320.py',
        'mask2former': 'configs/reference/mask2former_compact_1xb8-1k_coco128-320.py',
    }),
}
#: metrics logged as fractions (mmdet's COCO AP) that the tables and curves show in percent,
#: as mIoU and PQ are logged
FRACTION_METRICS = ('coco/segm_mAP', )
#: runs the full plan (no --runs) trains with every seed of --seeds; there the ablations use
#: the first seed only. Runs named in --runs train with every seed given.
SEEDED = ('clustseg', 'mask2former')
#: the run the report compares every other run with (Welch)
REFERENCE = 'clustseg'
#: per benchmark, runs compared with another run than :data:`REFERENCE`: these configs change
#: the recipe's void rule config (their _base_), not the benchmark config, so the void-rule run
#: is their reference
REFERENCES = {'camvid-panoptic': {
    name: 'clustseg_points-ignore-void'
    for name in ('clustseg_inner-points', 'clustseg_learned-stuff', 'clustseg_bank-pos')}}
#: per benchmark, held-out metrics compared besides the main one: (key, label)
SECONDARY = {'camvid-panoptic': (('coco_panoptic/PQ_th', 'PQ^Th'),
                                 ('coco_panoptic/PQ_st', 'PQ^St'))}


def run_dir(work_root, bench, name, seed):
    return osp.join(work_root, bench, f'{name}_s{seed}')


def plan(bench, runs, seeds):
    """[(name, config, seed)] in the order they run: the chosen runs with the first seed (both
    models, then the ablations), then the other seeds. Without ``runs`` (the full plan) only
    both models (:data:`SEEDED`) take the other seeds; runs named in ``runs`` take them all."""
    configs = BENCHMARKS[bench][3]
    unknown = sorted(set(runs or ()) - set(configs))
    if unknown:
        raise SystemExit(f'--runs {unknown}: not runs of {bench!r} ({sorted(configs)})')
    chosen = [n for n in configs if not runs or n in runs]
    chosen = [n for n in chosen if n in SEEDED] + [n for n in chosen if n not in SEEDED]
    again = chosen if runs else [n for n in chosen if n in SEEDED]
    return [(n, configs[n], seeds[0]) for n in chosen] + \
        [(n, configs[n], s) for s in seeds[1:] for n in again]


def shipped_name(config):
    """File name under the ship dir of a benchmark config's published checkpoint."""
    return osp.basename(config)[:-len('.py')] + '.pth'


def selected_checkpoint(wd, metric, select):
    """The checkpoint to score: the one with the best val ``metric`` or the last one."""
    if select == 'last':
        with open(osp.join(wd, 'last_checkpoint')) as f:
            return f.read().strip()
    found = sorted(glob.glob(osp.join(wd, f'best_{metric.replace("/", "_")}_iter_*.pth')))
    if len(found) != 1:
        raise RuntimeError(f'{wd}: expected one best_{metric}_iter_*.pth, found {found}')
    return found[0]


def run_one(args, index, total, name, config, seed):
    """Train (resumably), select and score one run of the plan; skipped when scored."""
    metric, _, select, _ = BENCHMARKS[args.benchmark]
    wd = run_dir(args.work_root, args.benchmark, name, seed)
    out = osp.join(wd, 'test_metrics.json')
    tag = f'[{index + 1}/{total}] {name} seed {seed}'
    if osp.isfile(out):
        print(f'{tag}: done ({out})', flush=True)
        return
    os.makedirs(wd, exist_ok=True)
    opts = [f'randomness.seed={seed}'] + list(args.cfg_options or [])
    if not osp.isfile(osp.join(wd, 'train_done')):
        print(f'{tag}: training in {wd}', flush=True)
        subprocess.run([sys.executable, osp.join(ROOT, 'tools/train.py'), config,
                        '--work-dir', wd, '--resume', 'auto', '--cfg-options', *opts],
                       check=True, cwd=ROOT)
        open(osp.join(wd, 'train_done'), 'w').close()
    ckpt = selected_checkpoint(wd, metric, select)
    print(f'{tag}: scoring {osp.basename(ckpt)} ({select}) on the held-out split', flush=True)
    part = osp.join(wd, 'test_metrics.part.json')  # tools/test.py --out wants a .json name
    subprocess.run([sys.executable, osp.join(ROOT, 'tools/test.py'), config, ckpt,
                    '--work-dir', osp.join(wd, 'test'), '--out', part,
                    '--cfg-options', *opts], check=True, cwd=ROOT)
    os.replace(part, out)


def run(args):
    """The plan's runs in order, ``--jobs`` at a time (1: one after the other, stopping at a
    failure; more: every run is tried and the failed ones are listed at the end)."""
    todo = plan(args.benchmark, args.runs, args.seeds)
    if args.jobs == 1:
        for i, entry in enumerate(todo):
            run_one(args, i, len(todo), *entry)
        return
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_one, args, i, len(todo), *entry)
                   for i, entry in enumerate(todo)]
        errors = [(entry, f.exception()) for entry, f in zip(todo, futures)]
    failed = [f'{name} seed {seed}: {err}' for (name, _, seed), err in errors if err]
    if failed:
        raise SystemExit('failed runs (run the same command again to resume them):\n' +
                         '\n'.join(failed))


def as_percent(metric, value):
    """A logged metric value in percent (``FRACTION_METRICS`` x 100; None stays None)."""
    if value is None:
        return None
    return 100.0 * float(value) if metric in FRACTION_METRICS else float(value)


def read_logs(wd, metric):
    """(val points [(iteration, training seconds, metric)], last iteration) from the scalars of
    every start of a run (a resumed run logs into a new folder; later starts override the
    iterations they repeat; a last line cut off by a kill is skipped). Training seconds at
    iteration i = i x the median of the logged
    seconds per iteration: the median keeps a stretch slowed by another job on the machine
    from distorting the time axis (validation time is not counted)."""
    per_iter, val = {}, {}
    for path in sorted(glob.glob(osp.join(wd, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut off by a kill: skipped
                    continue
                if metric in rec:
                    val[int(rec['step'])] = as_percent(metric, rec[metric])
                elif 'time' in rec and 'iter' in rec:
                    per_iter[int(rec['iter'])] = float(rec['time'])
    sec = median(per_iter.values()) if per_iter else None
    points = [(it, it * sec if sec else None, val[it]) for it in sorted(val)]
    return points, max(list(per_iter) + list(val) + [0])


def collect(args):
    metric, _, _, configs = BENCHMARKS[args.benchmark]
    rows = []
    for name in configs:
        for wd in sorted(glob.glob(run_dir(args.work_root, args.benchmark, name, '*'))):
            seed = int(wd.rsplit('_s', 1)[1])
            points, iters = read_logs(wd, metric)
            test = osp.join(wd, 'test_metrics.json')
            scored = json.load(open(test)) if osp.isfile(test) else {}
            held = as_percent(metric, scored.get(metric))
            secondary = {key: as_percent(key, scored.get(key))
                         for key, _ in SECONDARY.get(args.benchmark, ())}
            best = max(points, key=lambda p: p[2]) if points else None
            rows.append(dict(run=name, seed=seed, iters=iters, points=points,
                             finished=osp.isfile(osp.join(wd, 'train_done')),
                             train_s=points[-1][1] if points else None,
                             best_val=best[2] if best else None,
                             best_iter=best[0] if best else None, test=held,
                             secondary=secondary))
    return rows


def fmt(values, digits=2):
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    if len(values) == 1:
        return f'{values[0]:.{digits}f}'
    return f'{mean(values):.{digits}f} ± {(max(values) - min(values)) / 2:.{digits}f}'


def table(rows, label):
    lines = [f'| run | seeds | iterations | train time (min) | best val {label} (iter) | '
             f'held-out {label} per seed | held-out {label} mean ± half-range |',
             '|---|---|---|---|---|---|---|']
    for name in dict.fromkeys(r['run'] for r in rows):
        rs = [r for r in rows if r['run'] == name]
        lines.append(
            f'| {name} | {", ".join(str(r["seed"]) for r in rs)} | '
            f'{", ".join(str(r["iters"]) + ("" if r["finished"] else " (training)") for r in rs)} | '
            f'{fmt([r["train_s"] / 60 if r["train_s"] else None for r in rs], 1)} | '
            + ', '.join(f'{r["best_val"]:.2f} ({r["best_iter"]})' if r['best_val'] is not None
                        else '-' for r in rs)
            + ' | ' + ', '.join(f'{r["test"]:.2f}' if r['test'] is not None else '-' for r in rs)
            + f' | {fmt([r["test"] for r in rs])} |')
    return '\n'.join(lines)


def welch(values, reference):
    """(difference of the means, its standard error ``sqrt(s1^2 / n1 + s2^2 / n2)`` with the
    sample variances, or None when a side has one value) of ``values`` against ``reference``."""
    diff = mean(values) - mean(reference)
    if min(len(values), len(reference)) < 2:
        return diff, None
    return diff, sqrt(variance(values) / len(values) + variance(reference) / len(reference))


def comparison(rows, bench):
    """Every run with a held-out score against its reference (:data:`REFERENCE`, or the run
    :data:`REFERENCES` names for it): its mean ± sample sd over the scored seeds and, per
    compared metric (the main one and :data:`SECONDARY`), the difference of the means with its
    Welch standard error (none with one seed on a side). None without scored seeds of
    :data:`REFERENCE`."""
    label = BENCHMARKS[bench][1]
    metrics = [(None, label)] + list(SECONDARY.get(bench, ()))
    others = REFERENCES.get(bench, {})

    def scores(name, key):  # the run's scored seeds' values of one metric (None: the main one)
        values = (r['test'] if key is None else r['secondary'].get(key)
                  for r in rows if r['run'] == name)
        return [v for v in values if v is not None]

    if not scores(REFERENCE, None):
        return None
    head = [f'held-out {label} mean ± sd', 'against'] + [f'Δ {m} (SE)' for _, m in metrics]
    lines = [f'Against {REFERENCE}, or the run named (Welch):', '',
             '| run | scored seeds | ' + ' | '.join(head) + ' |',
             '|---|---|---:|---|' + '---:|' * len(metrics)]
    for name in dict.fromkeys(r['run'] for r in rows):
        main = scores(name, None)
        if not main:
            continue
        ref = others.get(name, REFERENCE)
        spread = f'{mean(main):.2f} ± {stdev(main):.2f}' if len(main) > 1 else f'{main[0]:.2f}'
        cells = [spread, '' if name == REFERENCE else ref]
        for key, _ in metrics:
            ours, theirs = scores(name, key), scores(ref, key)
            if name == REFERENCE or not ours or not theirs:
                cells.append('')
                continue
            diff, se = welch(ours, theirs)
            cells.append(f'{diff:+.2f}' + (f' ({se:.2f})' if se is not None else ''))
        seeds = ', '.join(str(r['seed']) for r in rows
                          if r['run'] == name and r['test'] is not None)
        lines.append(f'| {name} | {seeds} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(rows, label, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for r in rows:
        if not r['points']:
            continue
        its, secs, vals = zip(*r['points'])
        style = '-' if r['run'] in SEEDED else '--'
        axes[0].plot(its, vals, style, marker='.', label=f'{r["run"]} s{r["seed"]}')
        if None not in secs:
            axes[1].plot([s / 60 for s in secs], vals, style, marker='.')
    axes[0].set_xlabel('iteration')
    axes[1].set_xlabel('training time (min): iterations x median s/iteration')
    for ax in axes:
        ax.set_ylabel(f'val {label}')
        ax.grid(alpha=.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)


def report(args):
    label = BENCHMARKS[args.benchmark][1]
    rows = collect(args)
    if not rows:
        raise SystemExit(f'no runs under {osp.join(args.work_root, args.benchmark)}')
    print(table(rows, label))
    against = comparison(rows, args.benchmark)
    if against:
        print('\n' + against)
    if args.figure:
        plot(rows, label, args.figure)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


def ship(args):
    metric, _, select, configs = BENCHMARKS[args.benchmark]
    rows = collect(args)
    for name in SEEDED:
        runs = [r for r in rows if r['run'] == name and r['test'] is not None]
        if not runs:
            raise SystemExit(f'{name}: no scored run of {args.benchmark} to ship')
        chosen = max(runs, key=lambda r: r['best_val']) if select == 'best' else \
            min(runs, key=lambda r: r['seed'])
        wd = run_dir(args.work_root, args.benchmark, name, chosen['seed'])
        dst = osp.join(args.ship_dir, shipped_name(configs[name]))
        os.makedirs(args.ship_dir, exist_ok=True)
        print(f'{name}: seed {chosen["seed"]} (held-out {chosen["test"]:.2f}) -> {dst}',
              flush=True)
        subprocess.run([sys.executable, osp.join(ROOT, 'tools/model_converters/publish_model.py'),
                        selected_checkpoint(wd, metric, select), dst], check=True, cwd=ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('command', choices=['run', 'report', 'ship'])
    p.add_argument('benchmark', choices=sorted(BENCHMARKS))
    p.add_argument('--work-root', default='work_dirs/heldout')
    p.add_argument('--runs', nargs='+', help='run names (default: all of the benchmark)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1])
    p.add_argument('--jobs', type=int, default=1,
                   help='run: runs trained at the same time (default 1, one heavy job at a '
                   'time on a small CPU machine; a GPU machine can take several)')
    p.add_argument('--cfg-options', nargs='+', metavar='KEY=VALUE',
                   help='passed to tools/train.py and tools/test.py for every run')
    p.add_argument('--figure', help='report: write the val curves to this PNG')
    p.add_argument('--json', help='report: write the collected rows to this JSON')
    p.add_argument('--ship-dir', default='checkpoints/heldout',
                   help='ship: where the published checkpoints go')
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f'--jobs must be >= 1, got {args.jobs}')
    return args


def main(argv=None):
    args = parse_args(argv)
    dict(run=run, report=report, ship=ship)[args.command](args)


if __name__ == '__main__':
    main()
