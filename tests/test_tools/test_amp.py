"""--amp: bfloat16 autocast training on CPU (mmengine's AmpOptimWrapper needs CUDA)."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from train_helpers import (DETECTION, EMBEDDED, env_for, logged_losses, run, train_cmd,
                           write_config)


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
