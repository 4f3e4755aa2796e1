"""tools/analysis_tools/panoptic_overfit.sh: stage selection, skipping and the options it
passes to tools/train.py (a stand-in interpreter records them; nothing is trained)."""
import argparse
import os
import os.path as osp
import subprocess

import pytest
from mmengine.config import Config, DictAction

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, 'tools', 'analysis_tools', 'panoptic_overfit.sh')


def _run(tmp_path, only):
    rec = tmp_path / 'args.txt'
    fake = tmp_path / 'fake_python'
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {rec}\n')
    fake.chmod(0o755)
    env = dict(os.environ, PY=str(fake), OUT_DIR=str(tmp_path / 'out'), ONLY=only)
    res = subprocess.run(['bash', SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    args = rec.read_text().splitlines() if rec.exists() else None
    return res, args


def _cfg(args):
    """The config tools/train.py would build from the recorded arguments."""
    assert args[0] == 'tools/train.py'
    opts = args[args.index('--cfg-options') + 1:]
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    cfg = Config.fromfile(osp.join(ROOT, args[1]))
    cfg.merge_from_dict(parser.parse_args(['--o'] + opts).o)
    return cfg


def test_stage_three_fine_tunes_at_560_from_stage_two(tmp_path):
    res, args = _run(tmp_path, '3')
    assert res.returncode == 0, res.stderr
    cfg = _cfg(args)
    assert cfg.load_from == str(tmp_path / 'out' / 'stage2' / 'iter_500.pth')
    assert args[args.index('--work-dir') + 1] == str(tmp_path / 'out' / 'stage3')
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        resize = [t for t in cfg[loader].dataset.pipeline if t.type == 'Resize']
        assert [tuple(t.scale) for t in resize] == [(560, 560)], loader
    assert cfg.optim_wrapper.optimizer.lr == 5e-4
    assert cfg.train_cfg.max_iters == 700 and cfg.param_scheduler[1].end == 700
    assert cfg.train_cfg.val_interval == 100


def test_stage_one_is_the_400_pixel_config_and_finished_stages_are_skipped(tmp_path):
    res, args = _run(tmp_path, '1')
    assert res.returncode == 0, res.stderr
    cfg = _cfg(args)
    resize = [t for t in cfg.train_dataloader.dataset.pipeline if t.type == 'Resize']
    assert tuple(resize[0].scale) == (400, 400) and cfg.train_cfg.max_iters == 1500
    assert '--resume' not in args
    done = tmp_path / 'out' / 'stage1'
    done.mkdir(parents=True, exist_ok=True)
    (done / 'last_checkpoint').write_text('x')
    res, args = _run(tmp_path, '1')
    assert '--resume' in args  # an interrupted stage resumes
    (done / 'iter_1500.pth').write_text('x')
    (tmp_path / 'args.txt').unlink()
    res, args = _run(tmp_path, '1')
    assert res.returncode == 0 and args is None and 'stage 1 done' in res.stdout


@pytest.mark.parametrize('only', ['4', 'a'])
def test_unknown_stage_is_an_error(tmp_path, only):
    res, args = _run(tmp_path, only)
    assert res.returncode == 2 and f"unknown stage '{only}'" in res.stderr and args is None
