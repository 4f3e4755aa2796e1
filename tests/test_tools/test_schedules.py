"""Schedules follow a shortened (or lengthened) ``train_cfg.max_iters``: the cosine's end and
``T_max`` move with it; a part that no longer fits is an error naming the config keys."""
import importlib.util

import pytest
from mmengine.config import Config

from clustseg.engine import (ScheduleError, check_val_interval, fit_schedules_to_max_iters,
                             resumed_schedule_mismatch)

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
SEMANTIC = ROOT / 'configs' / 'semantic' / 'clustseg_compact_embedded.py'


def _train_tool():
    spec = importlib.util.spec_from_file_location('train_tool_sched', ROOT / 'tools' / 'train.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_config_schedule_fits_its_max_iters():
    for path in sorted((ROOT / 'configs').rglob('*.py')):
        if '_base_' in path.parts:
            continue
        cfg = Config.fromfile(str(path))
        old = (cfg.get('train_cfg') or {}).get('max_iters')
        assert fit_schedules_to_max_iters(cfg, old) == [], path
        check_val_interval(cfg)


def test_cosine_end_follows_max_iters(log_messages):
    cfg = _train_tool().load_config(str(SEMANTIC), {'train_cfg.max_iters': 100})
    warmup, cosine = cfg.param_scheduler
    assert cosine.type == 'CosineAnnealingLR' and (cosine.begin, cosine.end) == (20, 100)
    assert warmup.end == 20  # not tied to max_iters
    assert any('param_scheduler[1].end (CosineAnnealingLR): 150 -> 100' in m
               for m in log_messages)
    # T_max given as the length of the cosine follows too; an explicit end stays
    cfg = Config(dict(train_cfg=dict(max_iters=50), param_scheduler=[
        dict(type='CosineAnnealingLR', by_epoch=False, begin=10, end=300, T_max=290),
        dict(type='ConstantLR', by_epoch=False)]))
    changes = fit_schedules_to_max_iters(cfg, 300)
    assert cfg.param_scheduler[0].end == 50 and cfg.param_scheduler[0].T_max == 40
    assert len(changes) == 2
    epoch_based = Config(dict(train_cfg=dict(max_iters=5),
                              param_scheduler=dict(type='PolyLR', begin=0, end=12)))
    assert fit_schedules_to_max_iters(epoch_based, 100) == []  # epochs: not iterations


def test_schedule_that_no_longer_fits_is_an_error():
    """max_iters=10 on a config with a 20-iteration warm-up (the cosine begins at 20): it
    used to run 10 warm-up iterations and stop, silently."""
    with pytest.raises(SystemExit) as info:
        _train_tool().main([str(SEMANTIC), '--cfg-options', 'train_cfg.max_iters=10'])
    msg = str(info.value)
    assert msg.startswith(f'error: {SEMANTIC}: train_cfg.max_iters = 10, but '
                          'param_scheduler[0] (LinearLR) ends at iteration 20 (set '
                          'param_scheduler.0.end=N); param_scheduler[1] (CosineAnnealingLR) '
                          'begins at iteration 20 (set param_scheduler.1.begin=N)')
    with pytest.raises(ScheduleError, match=r'param_scheduler \(PolyLR\) ends at iteration 30'):
        fit_schedules_to_max_iters(Config(dict(
            train_cfg=dict(max_iters=20),
            param_scheduler=dict(type='PolyLR', by_epoch=False, end=30))), 20)


def test_scheduler_beginning_at_max_iters_is_an_error():
    """A scheduler that begins at iteration max_iters never runs (the last iteration is
    max_iters - 1): an error, as one beginning after it; one ending at max_iters fits."""
    def cfg(begin):
        return Config(dict(train_cfg=dict(max_iters=20), param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=begin),
            dict(type='PolyLR', by_epoch=False, begin=begin, end=20)]))
    assert fit_schedules_to_max_iters(cfg(19), 20) == []
    with pytest.raises(ScheduleError, match=r'param_scheduler\[1\] \(PolyLR\) begins at '
                       r'iteration 20 \(set param_scheduler\.1\.begin=N\)'):
        fit_schedules_to_max_iters(cfg(20), 20)


def test_cosine_after_a_shortened_warm_up_begins_where_it_ends(log_messages):
    """The README's shorter run, ``max_iters=10 param_scheduler.0.end=5``: the cosine began
    where the warm-up ended (20) and now begins at 5; one set on the command line stays."""
    tool = _train_tool()
    cfg = tool.load_config(str(SEMANTIC), {'train_cfg.max_iters': 10,
                                           'param_scheduler.0.end': 5})
    warmup, cosine = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 5) and (cosine.begin, cosine.end) == (5, 10)
    assert any('param_scheduler[1].begin (CosineAnnealingLR): 20 -> 5, where '
               'param_scheduler[0] ends' in m for m in log_messages)
    cfg = tool.load_config(str(SEMANTIC), {'train_cfg.max_iters': 10,
                                           'param_scheduler.0.end': 5,
                                           'param_scheduler.1.begin': 3})
    assert cfg.param_scheduler[1].begin == 3
    # T_max that was the cosine's length follows its new begin and end
    cfg = Config(dict(train_cfg=dict(max_iters=50), param_scheduler=[
        dict(type='LinearLR', by_epoch=False, begin=0, end=8),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=20, end=300, T_max=280)]))
    old = [dict(s, end=20) if i == 0 else dict(s)
           for i, s in enumerate(cfg.param_scheduler)]
    fit_schedules_to_max_iters(cfg, 300, old)
    assert (cfg.param_scheduler[1].begin, cfg.param_scheduler[1].end,
            cfg.param_scheduler[1].T_max) == (8, 50, 42)


@pytest.mark.parametrize('value', [0, -5, True])
def test_val_interval_below_one_is_an_error(value):
    """``train_cfg.val_interval=0`` stopped the run after its first iteration with a
    ZeroDivisionError (mmengine's loop validates when the iteration modulo it is 0): an
    error at start-up naming the key."""
    with pytest.raises(SystemExit) as info:
        _train_tool().load_config(str(SEMANTIC), {'train_cfg.val_interval': value})
    assert str(info.value) == (
        f'error: {SEMANTIC}: train_cfg.val_interval must be an integer >= 1 (iterations '
        f'between two validations), got {value} (to validate only at the end: '
        'train_cfg.val_interval=150, train_cfg.max_iters)')


def test_resume_with_another_begin_or_end_is_refused():
    """A resumed run keeps the checkpoint's scheduler state (begin and end): a config whose
    iteration-based scheduler begins or ends elsewhere is refused, naming each field; a
    scheduler without ``begin`` begins at 0; epoch-based schedulers are mmengine's."""
    cfg = Config(dict(train_cfg=dict(max_iters=40), param_scheduler=[
        dict(type='LinearLR', by_epoch=False, end=5),
        dict(type='PolyLR', by_epoch=False, begin=5, end=40)]))
    saved = [dict(begin=0, end=5), dict(begin=5, end=40)]
    assert resumed_schedule_mismatch(cfg, dict(param_schedulers=saved), 'a.pth') is None
    shifted = [dict(begin=2, end=5), dict(begin=10, end=40)]
    msg = resumed_schedule_mismatch(cfg, dict(param_schedulers=shifted), 'a.pth')
    assert msg.startswith('cannot resume a.pth with this schedule: param_scheduler[0].begin '
                          '(LinearLR) is 2 there and 0 here; param_scheduler[1].begin '
                          '(PolyLR) is 10 there and 5 here (train_cfg.max_iters=40)')
    epochs = Config(dict(param_scheduler=[dict(type='PolyLR', begin=0, end=3)] * 2))
    assert resumed_schedule_mismatch(epochs, dict(param_schedulers=shifted), 'a.pth') is None
