"""Checkpoints survive kill -9 at any moment, --resume always finds a loadable one, and a
resumed run continues on exactly the trajectory of an uninterrupted one."""
import os
import signal
import subprocess
import time

import pytest
import torch

from clustseg.utils import find_resumable_checkpoint, load_from_checked_file
from train_helpers import REPO_ROOT, env_for, logged_losses, run, train_cmd, write_config


def _ckpts(work):
    return sorted(p.name for p in work.glob('iter_*.pth')) if work.is_dir() else []


def _tmp_files(work):
    return [p.name for p in work.glob('.*.tmp')] if work.is_dir() else []


def _wait_then_kill(proc, work, mode, log, timeout=240):
    """kill -9 ``proc`` at the moment ``mode`` names:
    'during_save' (a temporary checkpoint file exists), 'after_save' (a new iter_*.pth has
    just appeared: before the pointer update and the old file's deletion) or 'timer:S'
    (S seconds after the run's first new checkpoint). Returns what it saw."""
    before = set(_ckpts(work))
    t0, t_new = time.time(), None
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f'training exited ({proc.returncode}) before the kill ({mode}):\n'
                        + log.read_text()[-4000:])
        if mode == 'during_save' and _tmp_files(work):
            proc.kill()
            return 'tmp'
        new = set(_ckpts(work)) - before
        if new and mode == 'after_save':
            proc.kill()
            return sorted(new)
        if new and mode.startswith('timer:'):
            t_new = t_new or time.time()
            if time.time() - t_new >= float(mode.split(':')[1]):
                proc.kill()
                return 'timer'
        time.sleep(0.0005)
    proc.kill()
    pytest.fail(f'{mode}: no kill point within {timeout} s:\n' + log.read_text()[-4000:])


def _assert_work_dir_consistent(work):
    """The pointer (if any) names a complete checkpoint; a resumable checkpoint exists."""
    found, _, skipped = find_resumable_checkpoint(str(work))
    assert found is not None and not skipped, (found, skipped)
    pointer = work / 'last_checkpoint'
    if pointer.exists():
        target = pointer.read_text().strip()
        assert os.path.isfile(target), f'last_checkpoint names a missing file: {target}'
        ckpt = load_from_checked_file(target, map_location='cpu')
        assert 'optimizer' in ckpt and 'state_dict' in ckpt


def test_kill_9_at_many_points_then_resume(tmp_path):
    # room for every kill: on a fast machine the timer kills let several iterations pass, and
    # 9 iterations were used up before the last kill (training ended, nothing to kill)
    max_iters = 40
    cfg = write_config(tmp_path, max_iters=max_iters, crop=48, ckpt_interval=1, max_keep_ckpts=1)
    work = tmp_path / 'work'
    env = env_for(tmp_path)
    modes = ['after_save', 'during_save', 'timer:0.3', 'during_save', 'after_save',
             'during_save', 'timer:1.0', 'during_save']
    left_tmp = 0
    for k, mode in enumerate(modes):
        log = tmp_path / f'run{k}.log'
        with open(log, 'w') as f:
            proc = subprocess.Popen(train_cmd(cfg, work, '--resume'), env=env,
                                    cwd=str(REPO_ROOT), stdout=f, stderr=subprocess.STDOUT)
            _wait_then_kill(proc, work, mode, log)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        left_tmp += bool(_tmp_files(work))
        _assert_work_dir_consistent(work)
    assert left_tmp, 'no kill landed inside a save (no half-written file was left)'
    stale = _tmp_files(work)
    out = run(train_cmd(cfg, work, '--resume'), env)
    assert 'resuming from' in out
    assert not stale or 'left by an interrupted save' in out
    assert not _tmp_files(work), 'stale temporary files were not removed'
    pointer = (work / 'last_checkpoint').read_text().strip()
    assert pointer.endswith(f'iter_{max_iters}.pth')
    assert load_from_checked_file(pointer, map_location='cpu')['meta']['iter'] == max_iters


def test_resume_skips_broken_checkpoints_and_pointer(tmp_path):
    cfg = write_config(tmp_path, max_iters=2, crop=48, ckpt_interval=1, max_keep_ckpts=2)
    work = tmp_path / 'work'
    env = env_for(tmp_path)
    run(train_cmd(cfg, work), env)
    assert _ckpts(work) == ['iter_1.pth', 'iter_2.pth']
    data = (work / 'iter_2.pth').read_bytes()
    (work / 'iter_2.pth').write_bytes(data[:len(data) // 2])  # truncated newest
    (work / 'last_checkpoint').write_text('')  # empty pointer
    out = run(train_cmd(cfg, work, '--resume', '--cfg-options', 'train_cfg.max_iters=3'), env)
    assert 'skipping' in out and 'iter_2.pth' in out and 'not a valid checkpoint' in out
    assert 'resuming from' in out and 'iter_1.pth' in out
    assert load_from_checked_file(str(work / 'iter_3.pth'))['meta']['iter'] == 3


def test_resume_with_nothing_to_resume_starts_fresh(tmp_path):
    cfg = write_config(tmp_path, max_iters=1, crop=48)
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'iter_7.pth'))  # names a missing file
    out = run(train_cmd(cfg, work, '--resume'), env_for(tmp_path))
    assert 'no resumable checkpoint' in out
    assert (work / 'iter_1.pth').is_file()


@pytest.mark.parametrize('task', ['superpixel', 'panoptic'])
def test_resume_is_exact(tmp_path, task):
    """N + M iterations straight == N, kill -9, resume, M (losses within 1e-6): K draws,
    memory-bank sampling, loss point sampling, data order and augmentation all resume, without
    loading the N trained batches again."""
    n, m = 3, 3
    cfg = write_config(tmp_path, task, max_iters=n + m, crop=64 if task == 'superpixel' else 256,
                       ckpt_interval=n, max_keep_ckpts=2)
    env = env_for(tmp_path)
    straight = tmp_path / 'straight'
    run(train_cmd(cfg, straight), env)
    ref = logged_losses(straight)
    assert sorted(ref) == list(range(1, n + m + 1))

    work = tmp_path / 'interrupted'
    log = tmp_path / 'interrupted.log'
    with open(log, 'w') as f:
        proc = subprocess.Popen(train_cmd(cfg, work), env=env, cwd=str(REPO_ROOT), stdout=f,
                                stderr=subprocess.STDOUT)
        t0 = time.time()
        pointer = work / 'last_checkpoint'
        while not (pointer.exists() and pointer.read_text().strip().endswith(f'iter_{n}.pth')):
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.time() - t0 < 300
            time.sleep(0.005)
        proc.kill()
        proc.wait()
    out = run(train_cmd(cfg, work, '--resume'), env)
    assert f'iter_{n}.pth' in out
    # the sampler starts at the trained position (ResumableIterBasedTrainLoop): the trained
    # batches are not loaded again, and their augmentation is seeded per sample
    assert f'the {n} trained batches are not loaded again' in out
    got = logged_losses(work)
    for it in range(n + 1, n + m + 1):
        assert abs(got[it] - ref[it]) <= 1e-6 * max(1.0, abs(ref[it])), (it, got[it], ref[it])
    a = torch.load(straight / f'iter_{n + m}.pth', map_location='cpu', weights_only=True)
    b = torch.load(work / f'iter_{n + m}.pth', map_location='cpu', weights_only=True)
    for k, v in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][k], v, rtol=1e-6, atol=1e-7, msg=k)


def _train_fails(cmd, env):
    proc = subprocess.run(cmd, env=env, cwd=str(REPO_ROOT), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0, proc.stdout[-3000:]
    return proc.stdout + proc.stderr


def test_resume_finds_checkpoints_in_the_hooks_out_dir(tmp_path):
    """default_hooks.checkpoint.out_dir: the checkpoints are in <out_dir>/<work dir name>;
    --resume continues from there instead of starting over (and overwriting them)."""
    out_dir = tmp_path / 'ckpts'
    cfg = write_config(tmp_path, max_iters=2, crop=48, extra=(
        f"default_hooks = dict(checkpoint=dict(out_dir={str(out_dir)!r}))"))
    work, env = tmp_path / 'work', env_for(tmp_path)
    run(train_cmd(cfg, work), env)
    assert (out_dir / 'work' / 'iter_2.pth').is_file() and not _ckpts(work)
    # the pointer stays in the work dir (as mmengine's), naming the file in out_dir
    assert (work / 'last_checkpoint').read_text() == str(out_dir / 'work' / 'iter_2.pth')
    out = run(train_cmd(cfg, work, '--resume', '--cfg-options', 'train_cfg.max_iters=3'), env)
    assert f'resuming from {out_dir / "work" / "iter_2.pth"}' in out
    assert load_from_checked_file(str(out_dir / 'work' / 'iter_3.pth'))['meta']['iter'] == 3


def test_resume_refuses_a_changed_schedule_and_evaluation_checkpoints(tmp_path):
    """A resumed run keeps the checkpoint's scheduler state: with a longer max_iters the
    extra iterations would train at the decayed-to-zero rate, so it is an error; an explicit
    --resume PATH gets the checks of the automatic choice."""
    cfg = write_config(tmp_path, max_iters=2, crop=48, extra=(
        "param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, "
        "end=max_iters, by_epoch=False)]"))
    work, env = tmp_path / 'work', env_for(tmp_path)
    run(train_cmd(cfg, work), env)
    out = _train_fails(train_cmd(cfg, work, '--resume', '--cfg-options',
                                 'train_cfg.max_iters=4'), env)
    assert 'param_scheduler[0].end (PolyLR) is 2 there and 4 here' in out
    assert 'load_from' in out and 'Traceback' not in out
    ckpt = load_from_checked_file(str(work / 'iter_2.pth'), map_location='cpu')
    weights = tmp_path / 'weights.pth'
    torch.save(dict(meta=ckpt['meta'], state_dict=ckpt['state_dict']), weights)
    out = _train_fails(train_cmd(cfg, work, '--resume', str(weights)), env)
    assert f'{weights} has no optimizer / message_hub state' in out and 'Traceback' not in out


def test_load_from_draws_with_the_new_runs_seed(tmp_path):
    """Fine-tuning from a checkpoint (load_from): the StepRandom state is this run's seed at
    step 0 plus its own draws, not the old run's (which it would continue whatever the seed)."""
    cfg = write_config(tmp_path, max_iters=2, crop=48)
    env = env_for(tmp_path)
    run(train_cmd(cfg, tmp_path / 'first'), env)
    first = load_from_checked_file(str(tmp_path / 'first' / 'iter_2.pth'))['state_dict']
    seeds = {}
    for seed in (123, 456):
        work = tmp_path / f'ft{seed}'
        run(train_cmd(cfg, work, '--cfg-options', f'randomness.seed={seed}',
                      f"load_from={str(tmp_path / 'first' / 'iter_2.pth')}"), env)
        state = load_from_checked_file(str(work / 'iter_2.pth'))['state_dict']
        keys = [k for k in state if k.endswith('.seed') and k[:-5] + '.step' in state]
        assert keys
        seeds[seed] = {k: int(state[k]) for k in keys}
        assert set(seeds[seed].values()) == {seed}
        # two iterations from step 0, as the first run: the same number of draws
        assert all(int(state[k[:-5] + '.step']) == int(first[k[:-5] + '.step']) for k in keys)


def test_checkpoint_dirs_name_the_hooks_folder_as_mmengine(load_script, tmp_path, monkeypatch):
    """<out_dir>/<basename of the absolute work dir>, also for work_dir='.' or a trailing /."""
    from mmengine.config import Config
    train = load_script('tools/train.py', name='train_tool')
    run_dir, out = tmp_path / 'myrun', tmp_path / 'ckpts'
    (out / 'myrun').mkdir(parents=True)
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    for work_dir in ('.', str(run_dir) + '/'):
        cfg = Config(dict(work_dir=work_dir,
                          default_hooks=dict(checkpoint=dict(out_dir=str(out)))))
        assert train.checkpoint_dirs(cfg) == [work_dir, str(out / 'myrun')]


def test_batch_warning_auto_scale_lr_and_cpu_sync_bn(load_script, monkeypatch, log_messages):
    """A run whose GPUs x batch is not the recipe's warns (its lr is the recipe's);
    --auto-scale-lr enables mmengine's linear scaling, or names a config without the base;
    SyncBN is dropped on a distributed CPU run of any size (torch has none there;
    setup_distributed, shared with tools/test.py)."""
    from mmengine.config import Config
    train = load_script('tools/train.py', name='train_tool_batch')
    for name in ('configs/semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py',
                 'configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py'):
        cfg = Config.fromfile(str(REPO_ROOT / name))
        train.check_batch(cfg, name, False)  # one process here: not the recipe's
        assert any(f'1 process(es) x batch_size {cfg.train_dataloader.batch_size}' in m and
                   '--auto-scale-lr' in m for m in log_messages)
        assert not cfg.auto_scale_lr.enable
        train.check_batch(cfg, name, True)
        assert cfg.auto_scale_lr.enable
    # a GPU launch: no process group yet when the check runs (the Runner makes it), so the
    # size is the launcher's; the recipe's 8 x 2 gives no warning, 4 x 2 names 4 processes
    from clustseg.utils import dist
    name = 'configs/semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py'
    monkeypatch.setattr(dist.torch_dist, 'is_initialized', lambda: False)
    for launcher, var in (('pytorch', 'WORLD_SIZE'), ('slurm', 'SLURM_NTASKS'),
                          ('mpi', 'OMPI_COMM_WORLD_SIZE')):
        for size, warns in (('8', False), ('4', True)):
            log_messages.clear()
            monkeypatch.setenv(var, size)
            cfg = Config.fromfile(str(REPO_ROOT / name))
            cfg.launcher = launcher
            train.check_batch(cfg, name, False)
            assert any(f'{size} process(es) x batch_size 2' in m for m in log_messages) == warns
        monkeypatch.delenv(var)
    monkeypatch.undo()
    cfg = Config(dict(train_dataloader=dict(batch_size=2), sync_bn='torch'))
    with pytest.raises(SystemExit, match='--auto-scale-lr needs auto_scale_lr=dict'):
        train.check_batch(cfg, 'x.py', True)
    monkeypatch.setattr(dist.torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(dist.torch_dist, 'is_initialized', lambda: True)  # no group made here
    dist.setup_distributed(cfg, 'none')  # not distributed: mmengine reverts SyncBN itself
    assert cfg.sync_bn == 'torch'
    dist.setup_distributed(cfg, 'pytorch')
    assert cfg.sync_bn is None and any('SyncBN needs a GPU' in m for m in log_messages)
