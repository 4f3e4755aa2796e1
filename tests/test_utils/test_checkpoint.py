"""Checkpoint fixes: weights-only loading of mmengine Runner checkpoints and atomic saving."""
import copy
import hashlib
import pickle
import uuid

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.fileio import get_file_backend
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner, load_checkpoint
from torch.utils.data import Dataset

from clustseg.utils import (MMENGINE_CHECKPOINT_GLOBALS, AtomicLocalBackend,
                            InvalidCheckpointError, allow_mmengine_checkpoint_globals,
                            atomic_write_bytes,
                            find_resumable_checkpoint, load_from_checked_file)

# GLOBAL names in a Runner checkpoint that torch's default weights-only set lacks.
EXPECTED_UNSAFE = {
    'builtins.getattr', 'mmengine.logging.history_buffer.HistoryBuffer', 'numpy.dtype',
    'numpy.ndarray', 'numpy._core.multiarray._reconstruct', 'numpy._core.multiarray.scalar'
}


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 2)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        logits = self.linear(inputs)
        if mode == 'loss':
            return dict(loss=F.cross_entropy(logits, data_samples))
        return logits


class ToyData(Dataset):
    # numpy in the dataset meta ends up in checkpoint['meta']['dataset_meta']
    metainfo = dict(classes=('a', 'b'), palette=np.array([[0, 0, 0], [255, 0, 0]], np.uint8))

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g), data_samples=torch.tensor(i % 2))


class RecordBeforeTrain(Hook):
    """Records the runner state right after load/resume."""

    def __init__(self):
        self.seen = {}

    def before_train(self, runner):
        self.seen = dict(
            iter=runner.iter,
            optimizer=copy.deepcopy(runner.optim_wrapper.state_dict()),
            schedulers=copy.deepcopy([s.state_dict() for s in runner.param_schedulers]),
            loss=runner.message_hub.get_scalar('train/loss').data[0].copy(),
            weight=runner.model.linear.weight.detach().clone())


def make_runner(work_dir, max_iters=4, custom_hooks=None,
                checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False), **kwargs):
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=f'ckpt_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2),
            dict(type='MultiStepLR', milestones=[3], by_epoch=False)
        ],
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=checkpoint,
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks,
        randomness=dict(seed=0),
        default_scope='mmseg',
        log_level='WARNING',
        **kwargs)


def _assert_tree_equal(a, b, path='root'):
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _assert_tree_equal(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_tree_equal(x, y, f'{path}[{i}]')
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a.cpu(), b.cpu()), path
    else:
        assert a == b, path


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 4-iteration run with checkpoints at iters 2 and 4."""
    work_dir = tmp_path_factory.mktemp('ckpt_run')
    runner = make_runner(work_dir)
    runner.train()
    return runner, work_dir


def test_runner_checkpoints_written(trained):
    _, work_dir = trained
    assert (work_dir / 'iter_2.pth').is_file() and (work_dir / 'iter_4.pth').is_file()
    assert not list(work_dir.glob('.*.tmp')), 'temporary files left behind'
    assert isinstance(get_file_backend(str(work_dir / 'iter_4.pth')), AtomicLocalBackend)


def test_weights_only_load_needs_exactly_the_allow_list(trained):
    _, work_dir = trained
    path = str(work_dir / 'iter_4.pth')
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert {'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'} <= ckpt.keys()
    assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert ckpt['meta']['iter'] == 4
    np.testing.assert_array_equal(ckpt['meta']['dataset_meta']['palette'],
                                  ToyData.metainfo['palette'])
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []

    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        assert set(torch.serialization.get_unsafe_globals_in_checkpoint(path)) == EXPECTED_UNSAFE
        with pytest.raises(pickle.UnpicklingError):
            torch.load(path, map_location='cpu')  # the default is weights_only=True
    finally:
        torch.serialization.add_safe_globals(saved)
    assert allow_mmengine_checkpoint_globals() == MMENGINE_CHECKPOINT_GLOBALS


def test_numpy_meta_roundtrip(trained, tmp_path):
    runner, _ = trained
    rng_state = np.random.RandomState(3).get_state()
    meta = dict(np_seed=np.int64(1234), rng_state=rng_state, score=np.float32(0.5),
                hist=np.arange(6, dtype=np.int32).reshape(2, 3))
    runner.save_checkpoint(str(tmp_path), 'np_meta.pth', meta=meta, by_epoch=False)
    ckpt = torch.load(tmp_path / 'np_meta.pth', map_location='cpu', weights_only=True)
    assert ckpt['meta']['np_seed'] == 1234 and ckpt['meta']['np_seed'].dtype == np.int64
    assert ckpt['meta']['score'] == np.float32(0.5)
    np.testing.assert_array_equal(ckpt['meta']['hist'], meta['hist'])
    np.testing.assert_array_equal(ckpt['meta']['rng_state'][1], rng_state[1])


def test_load_from(trained, tmp_path):
    runner, work_dir = trained
    fresh = make_runner(tmp_path, load_from=str(work_dir / 'iter_4.pth'))
    fresh.load_or_resume()
    for key, value in runner.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[key], value), key


def test_resume_continues_from_iter_4(trained):
    runner, work_dir = trained
    ckpt = torch.load(work_dir / 'iter_4.pth', map_location='cpu')
    # the file holds the final state of the first run
    _assert_tree_equal(runner.optim_wrapper.state_dict(), ckpt['optimizer'])

    recorder = RecordBeforeTrain()
    resumed = make_runner(work_dir, max_iters=6, resume=True, custom_hooks=[recorder])
    resumed.train()
    seen = recorder.seen
    assert seen['iter'] == 4
    _assert_tree_equal(seen['optimizer'], ckpt['optimizer'], 'optimizer')
    assert seen['optimizer']['state'][0]['step'].item() == 4
    _assert_tree_equal(seen['schedulers'], ckpt['param_schedulers'], 'param_schedulers')
    np.testing.assert_array_equal(seen['loss'],
                                  ckpt['message_hub']['log_scalars']['train/loss'].data[0])
    assert len(seen['loss']) == 4
    assert torch.equal(seen['weight'], ckpt['state_dict']['linear.weight'])
    assert resumed.iter == 6 and (work_dir / 'iter_6.pth').is_file()


class Disallowed:

    def __init__(self):
        self.payload = 'anything'


def test_disallowed_object_still_rejected(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict=dict(w=torch.ones(1)), extra=Disallowed()), path)
    with pytest.raises(pickle.UnpicklingError, match='Disallowed'):
        torch.load(path)
    with pytest.raises(InvalidCheckpointError, match='Disallowed') as e:
        load_checkpoint(nn.Linear(1, 1), str(path))
    assert str(path) in str(e.value) and 'weights_only' not in str(e.value)


def test_narrowed_getattr_rejects_other_attributes(tmp_path):

    class Evil:

        def __reduce__(self):
            return getattr, (np.ndarray, 'tofile')

    path = tmp_path / 'getattr.pth'
    torch.save(dict(x=Evil()), path)
    with pytest.raises(pickle.UnpicklingError, match='not allowed'):
        torch.load(path)


def test_failed_save_keeps_previous_checkpoint(trained, tmp_path, monkeypatch):
    runner, _ = trained
    runner.save_checkpoint(str(tmp_path), 'ckpt.pth', by_epoch=False)
    target = tmp_path / 'ckpt.pth'
    before = _sha(target)

    real_save = torch.save

    def exploding_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.seek(0)
        f.truncate()
        f.write(b'partial checkpoint bytes')
        raise RuntimeError('simulated crash while serialising')

    monkeypatch.setattr(torch, 'save', exploding_save)
    with pytest.raises(RuntimeError, match='simulated crash'):
        runner.save_checkpoint(str(tmp_path), 'ckpt.pth', by_epoch=False)
    monkeypatch.undo()
    assert _sha(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']


def test_failed_disk_write_keeps_previous_checkpoint(trained, tmp_path, monkeypatch):
    """The bytes reach the disk but the write fails before completion (e.g. disk full)."""
    runner, _ = trained
    runner.save_checkpoint(str(tmp_path), 'ckpt.pth', by_epoch=False)
    target = tmp_path / 'ckpt.pth'
    before = _sha(target)

    def failing_fsync(fd):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr('os.fsync', failing_fsync)
    with pytest.raises(OSError, match='No space left'):
        runner.save_checkpoint(str(tmp_path), 'ckpt.pth', by_epoch=False)
    monkeypatch.undo()
    assert _sha(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['ckpt.pth']
    torch.load(target, map_location='cpu')  # still a complete, loadable checkpoint


class RunsCode:
    """A pickle that would call os.system on an unsafe load."""

    def __reduce__(self):
        import os
        return os.system, ('echo pwned > /dev/null',)


@pytest.mark.parametrize('kind', ['garbage', 'empty', 'truncated', 'text', 'malicious'])
def test_not_a_checkpoint_names_the_file(trained, tmp_path, kind):
    _, work_dir = trained
    path = tmp_path / f'{kind}.pth'
    if kind == 'garbage':
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'truncated':
        data = (work_dir / 'iter_4.pth').read_bytes()
        path.write_bytes(data[:len(data) // 3])
    elif kind == 'text':
        path.write_text('this is a README, not a checkpoint\n')
    else:
        torch.save(dict(state_dict=dict(w=torch.ones(1)), x=RunsCode()), path)
    for load in (lambda: load_from_checked_file(str(path)),
                 lambda: load_checkpoint(nn.Linear(1, 1), str(path))):
        with pytest.raises(InvalidCheckpointError) as e:
            load()
        msg = str(e.value)
        assert str(path) in msg and 'not a valid checkpoint' in msg
        assert 'weights_only' not in msg and 'trust' not in msg, msg


def test_find_resumable_checkpoint_skips_broken_files(trained, tmp_path):
    _, work_dir = trained
    import os
    import shutil
    for name in ('iter_2.pth', 'iter_4.pth'):
        shutil.copy(work_dir / name, tmp_path / name)
    os.utime(tmp_path / 'iter_2.pth', (1, 1))
    data = (tmp_path / 'iter_4.pth').read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(data[:100])
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    found, _, skipped = find_resumable_checkpoint(str(tmp_path))
    assert found == str(tmp_path / 'iter_2.pth')
    assert [p for p, _ in skipped] == [str(tmp_path / 'iter_4.pth')]
    assert 'not a valid checkpoint' in skipped[0][1]
    (tmp_path / 'iter_2.pth').unlink()
    assert find_resumable_checkpoint(str(tmp_path))[0] is None


def test_find_resumable_checkpoint_equal_times_and_out_dir(trained, tmp_path):
    """Equal modification times (copies, archives): the higher iteration, not the name that
    sorts last as text; checkpoints in an extra folder (the hook's out_dir) are found."""
    import os
    import shutil
    _, work_dir = trained
    shutil.copy(work_dir / 'iter_2.pth', tmp_path / 'iter_9.pth')
    out = tmp_path / 'out'
    out.mkdir()
    shutil.copy(work_dir / 'iter_4.pth', out / 'iter_12.pth')
    for p in (tmp_path / 'iter_9.pth', out / 'iter_12.pth'):
        os.utime(p, (1000, 1000))
    assert find_resumable_checkpoint(str(tmp_path))[0] == str(tmp_path / 'iter_9.pth')
    found = find_resumable_checkpoint(str(tmp_path), extra_dirs=[str(out)])[0]
    assert found == str(out / 'iter_12.pth')
    shutil.copy(work_dir / 'iter_4.pth', tmp_path / 'iter_12.pth')
    os.utime(tmp_path / 'iter_12.pth', (1000, 1000))
    assert find_resumable_checkpoint(str(tmp_path))[0] == str(tmp_path / 'iter_12.pth')


def _fail_saving(runner, monkeypatch, name, error):
    """``runner.save_checkpoint`` raises ``error`` when it would write the file ``name``."""
    real = runner.save_checkpoint

    def save(out_dir, filename, *args, **kwargs):
        if filename == name:
            raise error
        return real(out_dir, filename, *args, **kwargs)

    monkeypatch.setattr(runner, 'save_checkpoint', save)


def test_safe_checkpoint_hook_keeps_old_checkpoint_when_save_dies(tmp_path, monkeypatch):
    """max_keep_ckpts=1: mmengine deletes the old file before writing the new one; the
    SafeCheckpointHook deletes it only after the new file and the pointer are complete."""
    runner = make_runner(tmp_path, max_iters=4, checkpoint=dict(
        type='SafeCheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=1))
    _fail_saving(runner, monkeypatch, 'iter_4.pth', KeyboardInterrupt('killed while saving'))
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_2.pth')
    load_from_checked_file(str(tmp_path / 'iter_2.pth'))


def test_safe_checkpoint_hook_rotates_after_saving(tmp_path):
    runner = make_runner(tmp_path, max_iters=6, checkpoint=dict(
        type='SafeCheckpointHook', interval=2, by_epoch=False, max_keep_ckpts=2))
    (tmp_path / '.iter_2.pth.abc123.tmp').write_bytes(b'left by a kill')
    runner.train()
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_4.pth', 'iter_6.pth']
    assert (tmp_path / 'last_checkpoint').read_text() == str(tmp_path / 'iter_6.pth')
    assert not list(tmp_path.glob('.*.tmp'))


def test_safe_checkpoint_hook_rejects_a_misspelled_key_before_training(tmp_path):
    """A misspelled key used to reach ``Runner.save_checkpoint`` at the first save, after the
    iterations before it had run; now the runner is not built."""
    with pytest.raises(TypeError, match=r"default_hooks.checkpoint.*unknown argument\(s\) "
                       r"'intervl'.*interval"):
        make_runner(tmp_path, max_iters=4, checkpoint=dict(
            type='SafeCheckpointHook', intervl=2, by_epoch=False))
    assert not list(tmp_path.glob('*.pth'))


class _Score(BaseMetric):
    """A validation score that changes with the weights: minus the mean absolute logit."""

    def process(self, data_batch, data_samples):
        self.results.append(-float(torch.stack(list(data_samples)).abs().mean()))

    def compute_metrics(self, results):
        return dict(score=float(np.mean(results)))


class _KillInValidation(Hook):
    """Dies in the validation after iteration ``at``: as a SIGKILL would stop it
    (KeyboardInterrupt), or with ``error`` (e.g. an evaluator's ValueError)."""

    def __init__(self, at, error=KeyboardInterrupt):
        self.at, self.error = at, error

    def before_val_epoch(self, runner):
        if runner.iter == self.at:
            raise self.error(f'failed while validating iteration {runner.iter}')


def _runner_kwargs(work_dir, custom_hooks, max_iters):
    return dict(
        model=ToyModel(), work_dir=str(work_dir), experiment_name=f'val_{uuid.uuid4().hex}',
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0, collate_fn=dict(type='default_collate')),
        val_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                            batch_size=4, num_workers=0, collate_fn=dict(type='default_collate')),
        val_cfg=dict(type='ValLoop'), val_evaluator=Evaluator(_Score()),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        default_hooks=dict(
            checkpoint=dict(type='SafeCheckpointHook', interval=2, by_epoch=False,
                            save_best='score', rule='greater'),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks, randomness=dict(seed=0), default_scope='mmseg',
        log_level='WARNING', resume=True)


def test_checkpoint_of_a_validating_iteration_is_saved_before_and_after_its_validation(
        tmp_path):
    """A kill in the validation of iteration 4 leaves iter_4.pth, written before it with that
    validation pending: the resumed run validates 4 first (nothing trained again), writes
    iter_4.pth again with that validation's best score, then goes on at 5."""
    with pytest.raises(KeyboardInterrupt):
        Runner(**_runner_kwargs(tmp_path, [_KillInValidation(4)], 6)).train()
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_4.pth')
    ckpt = load_from_checked_file(str(tmp_path / 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4 and ckpt['meta']['validation_pending']
    assert not load_from_checked_file(str(tmp_path / 'iter_2.pth'))['meta'].get(
        'validation_pending')  # written again after its validation
    (tmp_path / 'best_score_iter_4.pth').write_bytes(b'from the killed run: validated again')

    runner = Runner(**_runner_kwargs(tmp_path, None, 6))
    scores, losses = [], []
    runner.register_hook(_RecordScores(scores), priority='LOWEST')
    runner.register_hook(_RecordIters(losses), priority='LOWEST')
    runner.train()
    assert [it for it, _ in scores] == [4, 6]  # 4 validated first
    assert losses == [5, 6]  # 3 and 4 not trained again
    best_iter, best = max(scores, key=lambda s: s[1])
    assert [p.name for p in tmp_path.glob('best_*.pth')] == [f'best_score_iter_{best_iter}.pth']
    if best_iter == 4:
        assert (tmp_path / 'best_score_iter_4.pth').read_bytes()[:4] != b'from'
    ckpt = load_from_checked_file(str(tmp_path / 'iter_4.pth'))
    assert ckpt['meta']['iter'] == 4 and not ckpt['meta'].get('validation_pending')
    hub = ckpt['message_hub']['runtime_info']
    assert hub['best_score'] == pytest.approx(max(s for it, s in scores if it <= 4))

    # a best checkpoint of an iteration after the resumed one (left by a run killed after
    # it) is removed when a run resumes from before it
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    (tmp_path / 'best_score_iter_8.pth').write_bytes(b'from a killed run')
    Runner(**_runner_kwargs(tmp_path, None, 5)).train()
    assert not (tmp_path / 'best_score_iter_8.pth').exists()


@pytest.mark.parametrize('max_iters, val_begin, kill_at, kept', [
    (5, 1, 5, ['iter_2.pth', 'iter_4.pth', 'iter_5.pth']),
    (6, 4, 4, ['iter_2.pth', 'iter_4.pth'])],
    ids=['last_iteration', 'val_begin'])
def test_every_iteration_mmengine_validates_is_saved_before_its_validation(
        tmp_path, max_iters, val_begin, kill_at, kept):
    """mmengine's loop also validates after the last iteration (max_iters=5 is no multiple of
    val_interval=2) and first at ``val_begin``: the checkpoint of that iteration is written
    before the validation too, with the validation pending."""
    kwargs = _runner_kwargs(tmp_path, [_KillInValidation(kill_at)], max_iters)
    kwargs['train_cfg'] = dict(by_epoch=False, max_iters=max_iters, val_interval=2,
                               val_begin=val_begin)
    with pytest.raises(KeyboardInterrupt):
        Runner(**kwargs).train()
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == kept
    assert (tmp_path / 'last_checkpoint').read_text().endswith(kept[-1])
    assert load_from_checked_file(str(tmp_path / kept[-1]))['meta']['validation_pending']
    # resumed, the run validates that iteration first, also when it was the last one
    kwargs = _runner_kwargs(tmp_path, None, max_iters)
    kwargs['train_cfg'] = dict(by_epoch=False, max_iters=max_iters, val_interval=2,
                               val_begin=val_begin)
    runner, scores = Runner(**kwargs), []
    runner.register_hook(_RecordScores(scores), priority='LOWEST')
    runner.train()
    assert [it for it, _ in scores][0] == kill_at
    assert not load_from_checked_file(str(tmp_path / kept[-1]))['meta'].get(
        'validation_pending')


def test_a_new_run_keeps_best_checkpoints_it_did_not_write(tmp_path):
    """Only a resumed run removes best checkpoints of later iterations (their validation runs
    again): a run that starts at iteration 0 in a folder holding another run's best file
    leaves it alone."""
    (tmp_path / 'best_score_iter_8.pth').write_bytes(b'of an earlier run')
    Runner(**_runner_kwargs(tmp_path, None, 2)).train()
    assert (tmp_path / 'best_score_iter_8.pth').read_bytes() == b'of an earlier run'


def test_a_failed_validation_keeps_the_checkpoint_before_it(tmp_path, monkeypatch):
    """An exception in the validation of iteration 4 (a bad val image, an evaluator error, or
    on another DDP rank, which ends the run without an exception on rank 0) loses nothing
    trained: iter_4.pth was written before it, and a resume runs that validation first."""
    with pytest.raises(ValueError, match='failed while validating iteration 4'):
        Runner(**_runner_kwargs(tmp_path, [_KillInValidation(4, ValueError)], 6)).train()
    assert sorted(p.name for p in tmp_path.glob('iter_*.pth')) == ['iter_2.pth', 'iter_4.pth']
    assert (tmp_path / 'last_checkpoint').read_text().endswith('iter_4.pth')
    assert load_from_checked_file(str(tmp_path / 'iter_4.pth'))['meta']['iter'] == 4

    runner = Runner(**_runner_kwargs(tmp_path, None, 6))
    scores = []
    runner.register_hook(_RecordScores(scores), priority='LOWEST')
    runner.train()
    assert [it for it, _ in scores] == [4, 6]  # the failed validation runs again first
    # a failure of that write too: the checkpoint before it stays the newest
    runner = Runner(**_runner_kwargs(tmp_path / 'full', [_KillInValidation(4, ValueError)], 6))
    _fail_saving(runner, monkeypatch, 'iter_4.pth', OSError('No space left on device'))
    with pytest.raises(OSError, match='No space left'):
        runner.train()
    assert (tmp_path / 'full' / 'last_checkpoint').read_text().endswith('iter_2.pth')


class _RecordIters(Hook):
    def __init__(self, out):
        self.out = out

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.out.append(runner.iter + 1)


class _Rising(BaseMetric):
    """A score that improves at every validation (so each one writes a best checkpoint)."""
    calls = 0

    def process(self, data_batch, data_samples):
        pass

    def compute_metrics(self, results):
        _Rising.calls += 1
        return dict(score=float(_Rising.calls))


def _train_until_a_best_save_fails(tmp_path, monkeypatch, name):
    """6 iterations validating every 2 with a rising score; writing ``name`` fails (a full
    disk), which stops the run with that error."""
    _Rising.calls = 0
    kwargs = _runner_kwargs(tmp_path, None, 6)
    kwargs['val_evaluator'] = Evaluator(_Rising())
    runner = Runner(**kwargs)
    _fail_saving(runner, monkeypatch, name, OSError('No space left on device'))
    with pytest.raises(OSError, match='No space left'):
        runner.train()


def test_a_failed_best_save_keeps_the_previous_best(tmp_path, monkeypatch):
    """mmengine records a new best score and queues the old best file's deletion before it
    writes the new file; when that write fails (a full disk), the old best file and the
    recorded best survive, also in the checkpoint written before that validation."""
    _train_until_a_best_save_fails(tmp_path, monkeypatch, 'best_score_iter_4.pth')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == [
        'best_score_iter_2.pth', 'iter_2.pth', 'iter_4.pth']
    hub = load_from_checked_file(str(tmp_path / 'iter_4.pth'))['message_hub']['runtime_info']
    assert hub['best_score'] == 1.0 and hub['best_ckpt'].endswith('best_score_iter_2.pth')


class _RecordScores(Hook):
    def __init__(self, out):
        self.out = out

    def after_val_epoch(self, runner, metrics=None):
        self.out.append((runner.iter, metrics['score']))


def test_a_failed_first_best_save_records_no_best(tmp_path, monkeypatch):
    """The first best checkpoint's write fails: no best score or best file stays recorded (a
    resume from the checkpoint written before that validation would compare against a score
    whose file does not exist, and skip an equal or lower best)."""
    _train_until_a_best_save_fails(tmp_path, monkeypatch, 'best_score_iter_2.pth')
    assert sorted(p.name for p in tmp_path.glob('*.pth')) == ['iter_2.pth']
    hub = load_from_checked_file(str(tmp_path / 'iter_2.pth'))['message_hub']['runtime_info']
    assert not [k for k in hub if k.startswith('best_')], hub


def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    """A file written atomically (checkpoints, last_checkpoint) gets the mode open(..., 'wb')
    gives (0o666 less the umask), not mkstemp's owner-only 0o600: others sharing a work dir
    can read the checkpoints as before."""
    import os
    import stat
    atomic_write_bytes(b'x', tmp_path / 'atomic.pth')
    with open(tmp_path / 'plain.pth', 'wb') as f:
        f.write(b'x')
    modes = [stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in ('atomic.pth', 'plain.pth')]
    assert modes[0] == modes[1]
