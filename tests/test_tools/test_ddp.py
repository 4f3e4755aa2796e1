"""2-process DDP on CPU (gloo) through tools/dist_train.sh, for every task's embedded config:
both ranks end with identical parameters and buffers (memory banks, random-draw steps); for
superpixels, training also matches one process with the doubled batch, and tools/dist_test.sh
evaluates on 2 processes.

Why not the doubled-batch comparison for panoptic/instance: their losses sample random points
per image (mmdet's Mask2Former protocol) and the memory bank samples pixels per image, from a
stream that each process draws in its own image order, so one process holding both images
draws other points than two processes holding one image each: equally valid samples, not
equal numbers."""
import json
import re
import socket
import subprocess
import sys

import pytest
import torch

from train_helpers import (DETECTION, EMBEDDED, REPO_ROOT, env_for, logged_losses, run,
                           train_cmd, write_config)

SGD = ("optim_wrapper = dict(_delete_=True, type='OptimWrapper', "
       "optimizer=dict(type='SGD', lr=0.01))")


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _ddp_train(tmp_path, cfg, env):
    """tools/dist_train.sh on 2 processes -> (work dir, rank-0 state, rank-1 state); the two
    ranks' parameters and buffers are checked to be identical."""
    ddp_dir = tmp_path / 'ddp'
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'dist_train.sh'), str(cfg), '2',
                           '--work-dir', str(ddp_dir)], env=_ddp_env(env), cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    s0 = torch.load(ddp_dir / 'rank0_state.pt', weights_only=True)
    s1 = torch.load(ddp_dir / 'rank1_state.pt', weights_only=True)
    assert s0.keys() == s1.keys()
    for k in s0:
        torch.testing.assert_close(s0[k], s1[k], rtol=0, atol=0, msg=f'ranks differ: {k}')
    return ddp_dir, s0, s1


def _ddp_env(env):
    return dict(env, PORT=str(_free_port()), PYTHON=sys.executable)


@pytest.mark.parametrize('task', sorted(EMBEDDED))
def test_two_process_ddp(tmp_path, task):
    iters, per_rank = 3, 1
    env = env_for(tmp_path)
    # Same pixels whatever the batch layout, per-sample normalisation (GN), same K draws.
    # Plain SGD: a parameter's change is lr x its gradient, so equal parameters mean equal
    # gradients (Adam would turn the rounding noise of an analytically zero gradient, e.g. of
    # a Q bias under a softmax over clusters, into a full-size step of random sign).
    sgd = ("optim_wrapper = dict(_delete_=True, type='OptimWrapper', "
           "optimizer=dict(type='SGD', lr=0.01))")
    crop = 256 if task in DETECTION else 64  # 256: >= 100 stride-16 cells for the queries
    cfg2 = write_config(tmp_path, task, max_iters=iters, batch_size=per_rank, crop=crop,
                        deterministic=True, group_norm=True, record=True, extra=sgd)
    ddp_dir, s0, s1 = _ddp_train(tmp_path, cfg2, env)
    if task in DETECTION:
        losses = logged_losses(ddp_dir)
        assert sorted(losses) == list(range(1, iters + 1)), losses
        assert all(torch.isfinite(torch.tensor(v)) for v in losses.values()), losses
        if task == 'panoptic':  # the stuff memory bank was filled, identically on both ranks
            assert int(s0['panoptic_head.core.initializer.stuff.count'].sum()) > 0
        return

    single_dir = tmp_path / 'single'
    run(train_cmd(cfg2, single_dir, '--cfg-options',
                  f'train_dataloader.batch_size={2 * per_rank}'), env)
    ref = torch.load(single_dir / 'rank0_state.pt', weights_only=True)
    assert s0.keys() == ref.keys()
    for k in s0:
        torch.testing.assert_close(s0[k].float(), ref[k].float(), rtol=1e-4, atol=1e-6,
                                   msg=f'DDP vs doubled batch: {k}')
    l0 = json.loads((ddp_dir / 'rank0_losses.json').read_text())
    l1 = json.loads((ddp_dir / 'rank1_losses.json').read_text())
    lr = json.loads((single_dir / 'rank0_losses.json').read_text())
    assert sorted(l0) == sorted(lr) == [str(i) for i in range(1, iters + 1)]
    for it in lr:  # the mean of the ranks' losses is the doubled batch's loss
        assert abs((l0[it] + l1[it]) / 2 - lr[it]) <= 1e-4 * abs(lr[it]), (it, l0, l1, lr)

    # tools/dist_test.sh: 2 processes share the embedded val images, one metric over all
    out = tmp_path / 'metrics.json'
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'dist_test.sh'), str(cfg2),
                           str(ddp_dir / f'iter_{iters}.pth'), '2', '--work-dir',
                           str(tmp_path / 'test'), '--out', str(out), '--cfg-options',
                           'model.test_cfg.num_superpixels=100'],
                          env=_ddp_env(env), cwd=str(REPO_ROOT),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    metrics = json.loads(out.read_text())
    assert 0.5 < metrics['superpixel/ASA'] <= 1.0 and metrics['superpixel/num_superpixels'] > 10
    log = next((tmp_path / 'test').glob('*/*.log')).read_text()
    assert re.search(r'^\s+6 \|', log, re.M), log[-2000:]  # all 6 val images, once each


def test_two_process_ddp_semantic_uneven_batches(tmp_path):
    """Semantic (mmseg EncoderDecoder + ClustSegSemanticHead) on 2 processes with uneven
    batches: the 3 ADE20K images of tests/data, batch 2, a sampler without round-up, so rank 0
    trains on 2 images and rank 1 on 1 at every iteration. Both ranks end with identical
    parameters and buffers (memory banks included), and the banks took every image of every
    iteration: their fill counts and write pointers equal those of one process holding all 3
    images (the pixels each bank entry holds are random draws, so only counts compare)."""
    iters = 2
    env = env_for(tmp_path)
    sampler = ("train_dataloader['sampler'] = dict(type='DefaultSampler', shuffle=False, "
               "round_up=False)")
    cfg = write_config(tmp_path, 'semantic_ade20k', max_iters=iters, batch_size=2, crop=128,
                       deterministic=True, group_norm=True, record=True,
                       extra=SGD + '\n' + sampler + '\n')
    ddp_dir, s0, s1 = _ddp_train(tmp_path, cfg, env)
    bank = 'decode_head.core.initializer.'
    assert int(s0[bank + 'count'].sum()) > 0

    single_dir = tmp_path / 'single'
    run(train_cmd(cfg, single_dir, '--cfg-options', 'train_dataloader.batch_size=3'), env)
    ref = torch.load(single_dir / 'rank0_state.pt', weights_only=True)
    for k in ('count', 'ptr'):
        assert torch.equal(s0[bank + k], ref[bank + k]), k


@pytest.mark.parametrize('task', ['panoptic', 'semantic_ade20k'])
def test_two_process_ddp_paper_norms(tmp_path, task):
    """The paper configs' norms under 2-process DDP: a frozen BN backbone (no gradient, eval-mode
    statistics, as MMDetection's Mask2Former) and GroupNorm(32) in the pixel decoder. Both ranks
    end identical and the frozen statistics are the initial ones. (SyncBN, kMaX's choice, is not
    a paper-config norm; torch's SyncBatchNorm runs on GPUs only, so CPU CI cannot run it.)"""
    iters = 2
    env = env_for(tmp_path)
    head = 'panoptic_head' if task == 'panoptic' else 'decode_head'
    norms = (
        "frozen = dict(type='BN', requires_grad=False)\n"
        "gn = dict(type='GN', num_groups=32, requires_grad=True)\n"
        f"model = dict(backbone=dict(norm_cfg=frozen, norm_eval=True), {head}=dict("
        "pixel_decoder=dict(norm_cfg=gn)))\n")
    cfg = write_config(tmp_path, task, max_iters=iters, batch_size=1,
                       crop=256 if task == 'panoptic' else 128, deterministic=True,
                       record=True, extra=SGD + '\n' + norms)
    ddp_dir, s0, s1 = _ddp_train(tmp_path, cfg, env)
    # random init: running mean 0 / var 1, never updated; BN affine never trained
    assert torch.equal(s0['backbone.bn1.running_mean'], torch.zeros_like(s0['backbone.bn1.running_mean']))
    assert torch.equal(s0['backbone.bn1.running_var'], torch.ones_like(s0['backbone.bn1.running_var']))
    assert int(s0['backbone.bn1.num_batches_tracked']) == 0
    assert torch.equal(s0['backbone.bn1.weight'], torch.ones_like(s0['backbone.bn1.weight']))
    # the pixel decoder's norms are GroupNorm: affine weights (1-D) and no running statistics
    pd = {k: v for k, v in s0.items() if k.startswith(f'{head}.core.pixel_decoder')}
    assert not [k for k in pd if k.endswith(('running_mean', 'running_var'))]
    assert [k for k, v in pd.items() if k.endswith('.weight') and v.dim() == 1]


def test_two_process_resume_is_exact(tmp_path):
    """tools/dist_train.sh on 2 processes: 6 iterations straight equal 3, then --resume to 6
    (logged losses, bit for bit): each rank's sampler starts at its trained position and
    the augmentation is seeded per sample (ResumableIterBasedTrainLoop)."""
    cfg = write_config(tmp_path, 'superpixel', max_iters=6, crop=64, ckpt_interval=3,
                       max_keep_ckpts=2)
    env = _ddp_env(env_for(tmp_path))

    def dist(work, *extra):
        proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'dist_train.sh'), str(cfg),
                               '2', '--work-dir', str(work), *extra], env=env,
                              cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        return proc.stdout + proc.stderr

    dist(tmp_path / 'straight')
    dist(tmp_path / 'part', '--cfg-options', 'train_cfg.max_iters=3')
    assert 'the 3 trained batches are not loaded again' in dist(tmp_path / 'part', '--resume')
    straight, resumed = logged_losses(tmp_path / 'straight'), logged_losses(tmp_path / 'part')
    assert sorted(resumed) == list(range(1, 7))
    assert [resumed[i] for i in (4, 5, 6)] == [straight[i] for i in (4, 5, 6)]


def test_one_process_launch_drops_sync_bn_on_cpu(tmp_path):
    """tools/dist_train.sh CONFIG 1 and tools/dist_test.sh on a CPU, with the superpixel
    config's sync_bn='torch': a distributed launch of any size drops it with a warning (torch's
    SyncBN runs on GPUs only; DDP refused the model)."""
    cfg = write_config(tmp_path, 'superpixel', max_iters=1, batch_size=1, crop=64)
    env = _ddp_env(env_for(tmp_path))
    dropped = "sync_bn='torch' dropped: torch's SyncBN needs a GPU"
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'dist_train.sh'), str(cfg), '1',
                           '--work-dir', str(tmp_path / 'train')], env=env,
                          cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert dropped in proc.stdout + proc.stderr
    proc = subprocess.run(['bash', str(REPO_ROOT / 'tools' / 'dist_test.sh'), str(cfg),
                           str(tmp_path / 'train' / 'iter_1.pth'), '1', '--work-dir',
                           str(tmp_path / 'test'), '--cfg-options',
                           'model.test_cfg.num_superpixels=50'],
                          env=_ddp_env(env), cwd=str(REPO_ROOT), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert dropped in proc.stdout + proc.stderr
