"""--amp: bfloat16 autocast training on CPU (mmengine's AmpOptimWrapper needs CUDA)."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from train_helpers import (DETECTION, EMBEDDED, REPO_ROOT, env_for, logged_losses, run,
                           train_cmd, write_config)


def test_autocast_optim_wrapper_casts_and_steps():
    model = nn.Linear(8, 4)
    wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper',
                                              optimizer=dict(type='SGD', lr=0.1)))
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 8))
    assert out.dtype == torch.bfloat16
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32 and not torch.equal(before, model.weight)


def test_autocast_optim_wrapper_rejects_fp16_on_cpu():
    model = nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, dict(type='AutocastOptimWrapper', dtype='float16',
                                              optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(ValueError, match='bfloat16'):
        with wrapper.optim_context(model):
            pass
    with pytest.raises(ValueError, match='optim_wrapper.dtype'):
        build_optim_wrapper(model, dict(type='AutocastOptimWrapper', dtype='int8',
                                        optimizer=dict(type='SGD', lr=0.1)))


@pytest.mark.parametrize('task', sorted(EMBEDDED))
def test_amp_training_on_cpu_is_finite(tmp_path, task):
    cfg = write_config(tmp_path, task, max_iters=4, crop=256 if task in DETECTION else 64)
    out = run(train_cmd(cfg, tmp_path / 'work', '--amp'), env_for(tmp_path))
    assert 'AutocastOptimWrapper' in out
    losses = logged_losses(tmp_path / 'work')
    assert sorted(losses) == [1, 2, 3, 4]
    assert all(math.isfinite(v) for v in losses.values()), losses


def test_amp_dtype_flags_are_not_ignored(load_script, monkeypatch):
    """tools/train.py: ``--amp-dtype float16`` on a CPU is refused (no loss scaling there)
    rather than run as bfloat16, and ``--amp-dtype`` without ``--amp`` is refused rather than
    ignored."""
    from mmengine.config import Config
    train = load_script('tools/train.py', name='train_tool_amp')
    monkeypatch.setattr(train.torch.cuda, 'is_available', lambda: False)
    cfg = Config(dict(optim_wrapper=dict(type='OptimWrapper')))
    train.enable_amp(cfg, 'x.py', 'bfloat16')
    assert (cfg.optim_wrapper.type, cfg.optim_wrapper.dtype) == ('AutocastOptimWrapper',
                                                                  'bfloat16')
    ready = Config(dict(optim_wrapper=dict(type='AutocastOptimWrapper', dtype='bfloat16')))
    train.enable_amp(ready, 'x.py')  # already mixed precision: kept
    assert ready.optim_wrapper.type == 'AutocastOptimWrapper'
    with pytest.raises(SystemExit, match='--amp-dtype float16 needs CUDA'):
        train.enable_amp(Config(dict(optim_wrapper=dict(type='OptimWrapper'))), 'x.py',
                         'float16')
    config = str(REPO_ROOT / 'configs/superpixel/clustseg_compact_embedded.py')
    with pytest.raises(SystemExit, match='--amp-dtype needs --amp'):
        train.main([config, '--amp-dtype', 'bfloat16'])
