"""tools/analysis_tools/heldout_gpu.py: the compact data pack and its unpacking into the
converters' layout, the schedule scaled from the CPU benchmark's, the wall-clock budget; and
(slow) the whole GPU procedure on the CPU with a tiny budget on the committed samples."""
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from mmengine.config import Config


@pytest.fixture(scope='module')
def hg(load_script):
    return load_script('tools/analysis_tools/heldout_gpu.py')


def test_schedule_scaled_from_the_cpu_benchmark(hg, repo_root):
    """At 1,000 iterations the options give back each benchmark config's own schedule (CamVid:
    heldout_cpu.py's validation / checkpoint every 100 and 50 warm-up iterations; coco128:
    validation every 250); other lengths keep the proportions."""
    hb = hg._load('tools/analysis_tools/heldout_benchmark.py', 'hb')
    for bench, (_, _, _, configs) in hb.BENCHMARKS.items():
        for config in configs.values():
            cfg = Config.fromfile(str(repo_root / config))
            opts = dict(o.split('=') for o in hg.schedule_options(1000, config))
            assert int(opts['train_cfg.max_iters']) == cfg.train_cfg.max_iters == 1000
            assert int(opts['train_cfg.val_interval']) == cfg.train_cfg.val_interval, config
            assert int(opts['default_hooks.checkpoint.interval']) == \
                cfg.default_hooks.checkpoint.interval
            assert int(opts['param_scheduler.0.end']) == cfg.param_scheduler[0].end
            assert int(opts['param_scheduler.1.begin']) == cfg.param_scheduler[1].begin
            assert int(opts['param_scheduler.1.end']) == cfg.param_scheduler[1].end
    camvid = hb.BENCHMARKS['camvid'][3]['clustseg']
    opts = dict(o.split('=') for o in hg.schedule_options(4000, camvid))
    assert opts['train_cfg.val_interval'] == '400' and opts['param_scheduler.0.end'] == '200'
    coco = hb.BENCHMARKS['coco128'][3]['clustseg']
    assert 'train_cfg.val_interval=1000' in hg.schedule_options(4000, coco)


def test_runs_past_the_budget_are_stopped(hg, tmp_path):
    """A run still going at the deadline is stopped with its process group (its children
    too) and reported as stopped (None)."""
    marker = tmp_path / 'child_alive'
    code = ('import subprocess, sys, time; subprocess.Popen([sys.executable, "-c", '
            f'"import time; time.sleep(3); open({str(marker)!r}, \'w\')"]); time.sleep(60)')
    with open(tmp_path / 'log', 'w') as log:
        start = time.monotonic()
        rc, secs = hg._run_until([sys.executable, '-c', code], time.monotonic() + 1.5, log)
    assert rc is None and secs < 20 and time.monotonic() - start < 25
    time.sleep(4)
    assert not marker.exists()  # the child was stopped with its parent
    with open(tmp_path / 'log', 'w') as log:
        assert hg._run_until([sys.executable, '-c', 'pass'], time.monotonic() + 30, log)[0] == 0


def test_pack_and_unpack_rebuild_the_converted_layout(hg, repo_root, tmp_path):
    """pack: CamVid images as half-size JPEGs, labels unchanged; unpack: images back at their
    labels' size, the converters' layout (semantic labels, panoptic PNG + JSON, coco128
    instances) where the data options point; bad sources are named."""
    pack = tmp_path / 'pack'
    size = hg.pack(str(repo_root / 'tests/data/camvid'), str(repo_root / 'tests/data/coco128_seg'),
                   str(pack))
    assert 0 < size < 2**20
    src = sorted((repo_root / 'tests/data/camvid/train').glob('*.png'))[0]
    small = cv2.imread(str(pack / 'camvid/train' / (src.stem + '.jpg')))
    full = cv2.imread(str(src))
    assert small.shape[:2] == (full.shape[0] // 2, full.shape[1] // 2)
    assert (pack / 'camvid/trainannot' / src.name).read_bytes() == \
        (repo_root / 'tests/data/camvid/trainannot' / src.name).read_bytes()
    data = tmp_path / 'data'
    assert hg.unpack(str(pack), str(data), coco128_num_train=3) == ['camvid', 'coco128']
    img = cv2.imread(str(data / 'camvid/images/train' / src.name))
    assert img.shape == full.shape
    # JPEG + halving: 3.0 on this image; a BGR/RGB swap gives 8.4, an 8-pixel shift 11.6
    assert np.abs(img.astype(float) - full.astype(float)).mean() < 5
    for bench in ('camvid', 'camvid-panoptic', 'coco128'):
        for opt in hg.data_options(bench, str(data)):
            path = opt.split('=', 1)[1]
            assert os.path.exists(path), opt
    with pytest.raises(SystemExit, match='coco128_seg/train is missing'):
        hg.pack(str(repo_root / 'tests/data/coco128_seg'), None, str(tmp_path / 'bad'))
    with pytest.raises(SystemExit, match='neither'):
        hg.unpack(str(tmp_path / 'empty'), str(data))
    with pytest.raises(SystemExit, match='is not a pack'):  # never deletes another folder
        hg.pack(str(repo_root / 'tests/data/camvid'), None, str(data))
    assert (data / 'camvid').is_dir()


@pytest.mark.slow
def test_gpu_procedure_runs_on_the_cpu_with_a_tiny_budget(repo_root, tmp_path):
    """pack -> unpack -> run, as on the GPU machine, on the committed CamVid samples: both
    semantic models train 4 iterations, are scored on the test split and tabulated in
    heldout_gpu.md / .json with their curves."""
    script = [sys.executable, 'tools/analysis_tools/heldout_gpu.py']
    env = dict(os.environ, OMP_NUM_THREADS='1')

    def call(*args):
        res = subprocess.run(script + list(args), cwd=repo_root, env=env, capture_output=True,
                             text=True)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        return res
    call('pack', '--camvid-src', 'tests/data/camvid', '--out', str(tmp_path / 'pack'))
    call('unpack', '--pack', str(tmp_path / 'pack'), '--data-root', str(tmp_path / 'data'))
    out = tmp_path / 'out'
    call('run', '--benchmarks', 'camvid', '--runs', 'clustseg', 'mask2former', '--seeds', '0',
         '--iters', '4', '--jobs', '2', '--budget-s', '500', '--data-root',
         str(tmp_path / 'data'), '--work-root', str(tmp_path / 'work'), '--out-dir', str(out),
         '--cfg-options', 'train_dataloader.batch_size=2')
    md = (out / 'heldout_gpu.md').read_text()
    assert '## camvid (mIoU; finished' in md
    for name in ('clustseg', 'mask2former'):
        assert f'| {name} | 0 | 4 |' in md
    rows = json.load(open(out / 'heldout_gpu.json'))['rows']['camvid']
    assert sorted(r['run'] for r in rows) == ['clustseg', 'mask2former']
    assert all(r['test'] is not None and 0 <= r['test'] <= 100 for r in rows)
    assert (out / 'heldout_gpu_camvid.png').stat().st_size > 0


def test_run_reports_stopped_and_unstarted_benchmarks(hg, tmp_path, monkeypatch):
    """A benchmark stopped by the budget and one never started (budget spent) are named as
    such in heldout_gpu.md / .json, which are written after each benchmark."""
    calls = []

    def fake_run_until(cmd, deadline, log):
        calls.append(cmd)
        # stopped at the deadline, as the real one is; the budget (2 s) leaves the set-up
        # before the first benchmark time to spare on a loaded machine
        waited = max(deadline - time.monotonic(), 0.0) + 0.05
        time.sleep(waited)
        return None, waited
    monkeypatch.setattr(hg, '_run_until', fake_run_until)
    out = tmp_path / 'out'
    args = hg.parse_args(['run', '--benchmarks', 'camvid', 'coco128', '--budget-s', '2',
                          '--work-root', str(tmp_path / 'work'), '--out-dir', str(out)])
    assert hg.run(args) == 0
    assert len(calls) == 1 and 'camvid' in calls[0]
    md = (out / 'heldout_gpu.md').read_text()
    assert '## camvid (mIoU; stopped by the budget' in md
    assert '## coco128 (mask AP; not started: the budget was spent' in md
    meta = json.load(open(out / 'heldout_gpu.json'))['meta']
    assert meta['benchmarks']['coco128']['state'].startswith('not started')
