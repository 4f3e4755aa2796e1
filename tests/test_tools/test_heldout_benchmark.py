"""tools/analysis_tools/heldout_benchmark.py: the run plan, checkpoint selection, log reading
across resumed starts, the table; and (slow) a tiny end-to-end run of both semantic models on
the converted committed CamVid samples."""
import json
import os
import shutil
import subprocess
import sys

import pytest


@pytest.fixture(scope='module')
def hb(load_script):
    return load_script('tools/analysis_tools/heldout_benchmark.py')


def test_every_benchmark_config_exists(hb, repo_root):
    for bench, (_, _, select, configs) in hb.BENCHMARKS.items():
        assert select in ('best', 'last')
        assert set(hb.SEEDED) <= set(configs)
        for config in configs.values():
            assert (repo_root / config).is_file(), config


def test_panoptic_void_rule_follows_each_run_s_reference(hb, repo_root):
    """The benchmark config counts void points (as its reference seeds were trained) although
    the paper configs' base leaves them out; the runs compared with the void-rule run, and that
    run itself, leave them out. A base config change cannot move a run silently."""
    from mmengine.config import Config
    configs = hb.BENCHMARKS['camvid-panoptic'][3]
    void_runs = {'clustseg_points-ignore-void'} | set(hb.REFERENCES['camvid-panoptic'])
    for name, config in configs.items():
        if name.startswith('clustseg'):
            cfg = Config.fromfile(str(repo_root / config))
            assert cfg.model.train_cfg.points_ignore_void == (name in void_runs), name


def test_plan_runs_the_first_seed_and_the_ablations_before_other_seeds(hb):
    order = [(n, s) for n, _, s in hb.plan('camvid', None, [3, 4])]
    assert order[:2] == [('clustseg', 3), ('mask2former', 3)]
    assert order[-2:] == [('clustseg', 4), ('mask2former', 4)]
    ablations = order[2:-2]
    assert [n for n, _ in ablations] == [f'clustseg_{a}' for a in
                                         hb.ABLATIONS + hb.DIAGNOSTICS]
    assert all(s == 3 for _, s in ablations)
    assert [n for n, _, _ in hb.plan('coco128', ['mask2former'], [0])] == ['mask2former']
    with pytest.raises(SystemExit, match='clustseg_T9'):
        hb.plan('camvid', ['clustseg_T9'], [0])


def test_plan_gives_named_runs_every_seed(hb):
    """An ablation named in --runs trains with every seed given (the full plan keeps the
    ablations at the first seed): first seeds first, then the others in the same order."""
    order = [(n, s) for n, _, s in hb.plan('camvid-panoptic', ['clustseg_T1', 'clustseg'],
                                           [1, 2])]
    assert order == [('clustseg', 1), ('clustseg_T1', 1), ('clustseg', 2), ('clustseg_T1', 2)]
    assert [s for _, _, s in hb.plan('camvid-panoptic', ['clustseg_vanilla-attn'], [3])] == [3]


def test_selected_checkpoint(hb, tmp_path):
    (tmp_path / 'best_coco_panoptic_PQ_iter_300.pth').write_bytes(b'')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1000.pth'))
    assert hb.selected_checkpoint(str(tmp_path), 'coco_panoptic/PQ', 'best').endswith(
        'best_coco_panoptic_PQ_iter_300.pth')
    assert hb.selected_checkpoint(str(tmp_path), 'coco_panoptic/PQ', 'last').endswith(
        'iter_1000.pth')
    (tmp_path / 'best_coco_panoptic_PQ_iter_400.pth').write_bytes(b'')
    with pytest.raises(RuntimeError, match='expected one'):
        hb.selected_checkpoint(str(tmp_path), 'coco_panoptic/PQ', 'best')


def _scalars(wd, start, records):
    d = wd / start / 'vis_data'
    d.mkdir(parents=True)
    (d / 'scalars.json').write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_read_logs_joins_resumed_starts_and_uses_the_median_time(hb, tmp_path):
    # first start: iterations 25..100 (one slowed by another job), val at 100; killed at 110;
    # the resumed start repeats nothing before 100 and logs 125..200, val at 200
    _scalars(tmp_path, '20260101_000000',
             [dict(iter=25, time=0.5, loss=3.0), dict(iter=50, time=9.0, loss=2.0),
              dict(iter=75, time=0.5), dict(iter=100, time=0.5), dict(mIoU=10.0, step=100)])
    _scalars(tmp_path, '20260101_010000',
             [dict(iter=125, time=0.5), dict(iter=150, time=0.5), dict(iter=175, time=0.5),
              dict(iter=200, time=0.5), dict(mIoU=12.5, step=200)])
    points, last = hb.read_logs(str(tmp_path), 'mIoU')
    assert last == 200
    assert points == [(100, 50.0, 10.0), (200, 100.0, 12.5)]
    # a run killed while writing: its last line is cut off and skipped
    path = tmp_path / '20260101_010000' / 'vis_data' / 'scalars.json'
    with open(path, 'a') as f:
        f.write('{"iter": 225, "ti')
    assert hb.read_logs(str(tmp_path), 'mIoU') == (points, 200)


@pytest.fixture(scope='module')
def tool_parsers(load_script):
    """The argument parsers of tools/train.py and tools/test.py, by script name."""
    return {name: load_script(f'tools/{name}', f'heldout_{name[:-3]}').parse_args
            for name in ('train.py', 'test.py')}


def _fake_subprocess(calls, state, parsers, fail=None):
    """A stand-in for subprocess.run of tools/train.py / tools/test.py: parses the command
    with the script's own parser (a flag or an --out name it refuses fails here too), writes
    what it would (a best checkpoint; the metrics file), records the runs going on at once."""
    import threading
    import time
    lock = threading.Lock()

    def fake(cmd, check, cwd):
        parsers[os.path.basename(cmd[1])](cmd[2:])
        args = cmd[cmd.index('--cfg-options') + 1:]
        wd = cmd[cmd.index('--work-dir') + 1]
        with lock:
            state['now'] += 1
            state['max'] = max(state['max'], state['now'])
            calls.append((os.path.basename(cmd[1]), wd))
        time.sleep(0.05)
        with lock:
            state['now'] -= 1
        if fail and fail in wd:
            raise subprocess.CalledProcessError(1, cmd)
        if cmd[1].endswith('train.py'):
            open(os.path.join(wd, 'best_mIoU_iter_100.pth'), 'w').close()
        else:
            out = cmd[cmd.index('--out') + 1]
            with open(out, 'w') as f:
                json.dump(dict(mIoU=1.0, seed=args[0]), f)
    return fake


def test_parallel_jobs_run_every_run_and_list_the_failed(hb, tool_parsers, tmp_path,
                                                        monkeypatch):
    calls, state = [], dict(now=0, max=0)
    monkeypatch.setattr(hb.subprocess, 'run', _fake_subprocess(calls, state, tool_parsers))
    root = tmp_path / 'work'
    hb.main(['run', 'camvid', '--work-root', str(root), '--seeds', '0', '1', '--jobs', '3'])
    todo = hb.plan('camvid', None, [0, 1])
    for name, _, seed in todo:
        metrics = json.loads((root / 'camvid' / f'{name}_s{seed}' /
                              'test_metrics.json').read_text())
        assert metrics['seed'] == f'randomness.seed={seed}'
    assert len(calls) == 2 * len(todo) and 2 <= state['max'] <= 3
    # a failed run does not stop the others; the command lists it and a rerun resumes it
    calls.clear()
    monkeypatch.setattr(hb.subprocess, 'run',
                        _fake_subprocess(calls, dict(now=0, max=0), tool_parsers,
                                         fail='clustseg_T1_s0'))
    root2 = tmp_path / 'work2'
    with pytest.raises(SystemExit, match='clustseg_T1 seed 0'):
        hb.main(['run', 'camvid', '--work-root', str(root2), '--seeds', '0', '--jobs', '2'])
    done = sorted(p.parent.name for p in (root2 / 'camvid').glob('*/test_metrics.json'))
    assert 'clustseg_T1_s0' not in done and len(done) == len(hb.plan('camvid', None, [0])) - 1
    # the rerun trains and scores the failed run only; a trained run that lost its score is
    # scored again without training
    (root2 / 'camvid' / 'clustseg_s0' / 'test_metrics.json').unlink()
    calls.clear()
    monkeypatch.setattr(hb.subprocess, 'run',
                        _fake_subprocess(calls, dict(now=0, max=0), tool_parsers))
    hb.main(['run', 'camvid', '--work-root', str(root2), '--seeds', '0', '--jobs', '2'])
    runs = sorted((tool, os.path.relpath(wd, root2 / 'camvid').split(os.sep)[0])
                  for tool, wd in calls)
    assert runs == [('test.py', 'clustseg_T1_s0'), ('test.py', 'clustseg_s0'),
                    ('train.py', 'clustseg_T1_s0')], runs
    with pytest.raises(SystemExit):
        hb.main(['run', 'camvid', '--jobs', '0'])


def test_coco_ap_is_reported_in_percent(hb, tmp_path, capsys):
    """mmdet logs mask AP as a fraction; the coco128 table and curves show it in percent
    like mIoU and PQ (val and held-out alike)."""
    wd = tmp_path / 'work' / 'coco128' / 'clustseg_s0'
    _scalars(wd, '20260101_000000', [dict(iter=250, time=1.0),
                                     {'coco/segm_mAP': 0.011, 'step': 250}])
    (wd / 'test_metrics.json').write_text(json.dumps({'coco/segm_mAP': 0.005}))
    (wd / 'train_done').write_text('')
    points, _ = hb.read_logs(str(wd), 'coco/segm_mAP')
    assert points == [(250, 250.0, pytest.approx(1.1))]
    hb.main(['report', 'coco128', '--work-root', str(tmp_path / 'work')])
    assert '| clustseg | 0 | 250 | 4.2 | 1.10 (250) | 0.50 | 0.50 |' in capsys.readouterr().out
    assert hb.as_percent('mIoU', 33.5) == 33.5 and hb.as_percent('coco/segm_mAP', None) is None


def test_report_table_gives_mean_and_half_range(hb, tmp_path, capsys):
    root = tmp_path / 'work'
    for name, seed, val, test in (('clustseg', 0, 20.0, 18.0), ('clustseg', 1, 22.0, 19.0),
                                  ('mask2former', 0, 15.0, 14.0)):
        wd = root / 'camvid' / f'{name}_s{seed}'
        _scalars(wd, '20260101_000000', [dict(iter=100, time=1.0), dict(mIoU=val, step=100)])
        (wd / 'test_metrics.json').write_text(json.dumps(dict(mIoU=test)))
        (wd / 'train_done').write_text('')
    _scalars(root / 'camvid' / 'mask2former_s1', '20260101_000000', [dict(iter=25, time=1.0)])
    hb.main(['report', 'camvid', '--work-root', str(root), '--figure', str(tmp_path / 'c.png'),
             '--json', str(tmp_path / 'rows.json')])
    out = capsys.readouterr().out
    assert '| clustseg | 0, 1 | 100, 100 | 1.7 ± 0.0 | 20.00 (100), 22.00 (100) | 18.00, 19.00 | ' \
           '18.50 ± 0.50 |' in out
    assert '| mask2former | 0, 1 | 100, 25 (training) | 1.7 | 15.00 (100), - | 14.00, - | ' \
           '14.00 |' in out
    assert (tmp_path / 'c.png').stat().st_size > 0
    assert len(json.load(open(tmp_path / 'rows.json'))) == 4


@pytest.mark.slow
def test_tiny_run_trains_selects_scores_and_resumes(hb, repo_root, heldout_data, tmp_path):
    """4 iterations of ClustSeg and Mask2Former on the converted samples (data root under
    ``heldout_data``): each run trains, keeps its best-on-val checkpoint, is scored on the test
    split; a second call skips finished runs; after ``test_metrics.json`` is removed only the
    scoring is redone."""
    data = heldout_data / 'data' / 'camvid'
    opts = ['train_cfg.max_iters=4', 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.interval=2', 'param_scheduler.0.end=2',
            'param_scheduler.1.begin=2', 'param_scheduler.1.end=4',
            'train_dataloader.batch_size=2', f'train_dataloader.dataset.data_root={data}',
            f'val_dataloader.dataset.data_root={data}',
            f'test_dataloader.dataset.data_root={data}']
    cmd = [sys.executable, 'tools/analysis_tools/heldout_benchmark.py', 'run', 'camvid',
           '--runs', 'clustseg', 'mask2former', '--seeds', '0', '--work-root', str(tmp_path),
           '--cfg-options', *opts]
    env = dict(os.environ, OMP_NUM_THREADS='2')
    first = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for name in ('clustseg', 'mask2former'):
        wd = tmp_path / 'camvid' / f'{name}_s0'
        metrics = json.load(open(wd / 'test_metrics.json'))
        assert 0 <= metrics['mIoU'] <= 100
        assert (wd / 'train_done').is_file()
        assert len(list(wd.glob('best_mIoU_iter_*.pth'))) == 1
    again = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.count(': done (') == 2, again.stdout
    os.remove(tmp_path / 'camvid' / 'clustseg_s0' / 'test_metrics.json')
    shutil.rmtree(tmp_path / 'camvid' / 'clustseg_s0' / 'test')
    third = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True)
    assert third.returncode == 0, third.stderr[-3000:]
    assert 'clustseg seed 0: scoring best_mIoU_iter_' in third.stdout
    assert 'clustseg seed 0: training' not in third.stdout
    assert (tmp_path / 'camvid' / 'clustseg_s0' / 'test_metrics.json').is_file()


def test_report_compares_every_run_with_clustseg(hb, tmp_path, capsys):
    """The second table: mean ± sample sd over the scored seeds, and per metric (PQ, PQ^Th,
    PQ^St on the panoptic benchmark) the difference of the means with its Welch standard
    error; a one-seed run gets the difference only, an unscored seed is left out. A run
    REFERENCES names another reference for is compared with that one."""
    for bench, pairs in hb.REFERENCES.items():  # every name a run of its benchmark
        assert set(pairs) | set(pairs.values()) <= set(hb.BENCHMARKS[bench][3]), bench
    root = tmp_path / 'work'
    runs = (('clustseg', 0, 26.0, 8.0), ('clustseg', 1, 27.0, 9.0), ('clustseg', 2, 28.0, 10.0),
            ('clustseg_T1', 0, 25.0, 9.0), ('clustseg_T1', 1, 27.0, 9.0),
            ('clustseg_vanilla-attn', 0, 24.5, 7.0),
            ('clustseg_points-ignore-void', 0, 27.0, 8.0),
            ('clustseg_points-ignore-void', 1, 29.0, 8.0), ('clustseg_bank-pos', 0, 30.0, 9.0),
            ('clustseg_bank-pos', 1, 30.0, 11.0))
    for name, seed, pq, th in runs:
        wd = root / 'camvid-panoptic' / f'{name}_s{seed}'
        _scalars(wd, '20260101_000000', [dict(iter=100, time=1.0),
                                         {'coco_panoptic/PQ': pq + 10, 'step': 100}])
        (wd / 'test_metrics.json').write_text(json.dumps(
            {'coco_panoptic/PQ': pq, 'coco_panoptic/PQ_th': th, 'coco_panoptic/PQ_st': 30.0}))
        (wd / 'train_done').write_text('')
    _scalars(root / 'camvid-panoptic' / 'clustseg_T1_s2', '20260101_000000',
             [dict(iter=25, time=1.0)])
    hb.main(['report', 'camvid-panoptic', '--work-root', str(root)])
    out = capsys.readouterr().out
    assert '| run | scored seeds | held-out PQ mean ± sd | against | Δ PQ (SE) | Δ PQ^Th (SE) ' \
           '| Δ PQ^St (SE) |' in out
    assert '| clustseg | 0, 1, 2 | 27.00 ± 1.00 |  |  |  |  |' in out
    # T1: -1.00 with SE sqrt(2 / 2 + 1 / 3) = 1.15; PQ^Th +0.00 (SE sqrt(0 + 1 / 3) = 0.58)
    assert '| clustseg_T1 | 0, 1 | 26.00 ± 1.41 | clustseg | -1.00 (1.15) | +0.00 (0.58) | ' \
           '+0.00 (0.00) |' in out
    assert '| clustseg_vanilla-attn | 0 | 24.50 | clustseg | -2.50 | -2.00 | +0.00 |' in out
    # a stuff diagnostic against the void-rule run its config builds on (REFERENCES):
    # PQ 30 - 28 = +2.00, SE sqrt(0 + 2 / 2) = 1.00; PQ^Th 10 - 8, SE sqrt(2 / 2 + 0) = 1.00
    assert '| clustseg_bank-pos | 0, 1 | 30.00 ± 0.00 | clustseg_points-ignore-void | ' \
           '+2.00 (1.00) | +2.00 (1.00) | +0.00 (0.00) |' in out
    assert hb.welch([1.0], [2.0, 4.0]) == (-2.0, None)
    assert hb.comparison([r for r in hb.collect(hb.parse_args(
        ['report', 'camvid-panoptic', '--work-root', str(root)])) if r['run'] != 'clustseg'],
        'camvid-panoptic') is None
