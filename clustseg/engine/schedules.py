"""Parameter schedules that follow ``train_cfg.max_iters``.

The configs write each schedule's end as the iteration count (``end=max_iters``), a value
fixed when the config is read: ``--cfg-options train_cfg.max_iters=10`` left the cosine's end
(and ``T_max``) at the old count, so the run stopped in the middle of the decay without a
word. :func:`fit_schedules_to_max_iters` (called by tools/train.py) moves the end of every
iteration-based scheduler that ended at the old ``max_iters`` to the new one, lets a scheduler
that began where the one before it ended (a cosine after its warm-up) follow that one's new
end, and refuses a schedule that still does not fit (a warm-up longer than the run, a
scheduler beginning after it) with an error naming the config keys to set.
"""
from typing import List, Optional

from mmengine.logging import print_log


class ScheduleError(ValueError):
    """A ``param_scheduler`` that does not fit ``train_cfg.max_iters``, or a
    ``train_cfg.val_interval`` below 1; names the keys."""


def check_val_interval(cfg) -> None:
    """``train_cfg.val_interval`` must be an integer >= 1: mmengine's loops validate when the
    iteration (epoch) count modulo it is 0, so 0 stopped the run after its first iteration
    with a ``ZeroDivisionError``. Raises :class:`ScheduleError` naming the key."""
    train_cfg = cfg.get('train_cfg') or {}
    value = train_cfg.get('val_interval')
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and
                         value >= 1):
        return
    unit, last = ('iterations', 'max_iters') if 'max_iters' in train_cfg else \
        ('epochs', 'max_epochs')
    hint = (f' (to validate only at the end: train_cfg.val_interval={train_cfg[last]}, '
            f'train_cfg.{last})' if isinstance(train_cfg.get(last), int) else '')
    raise ScheduleError(f'train_cfg.val_interval must be an integer >= 1 ({unit} between two '
                        f'validations), got {value!r}{hint}')


def _as_list(scheds) -> list:
    """A ``param_scheduler`` value (one scheduler, a list, or None) as a list."""
    if scheds is None:
        return []
    return list(scheds) if isinstance(scheds, (list, tuple)) else [scheds]


def _schedulers(cfg) -> list:
    return _as_list(cfg.get('param_scheduler'))


def _is_iteration_based(sched) -> bool:
    # mmengine's schedulers default to by_epoch=True (then begin / end count epochs)
    return not sched.get('by_epoch', True)


def _key(cfg, i: int) -> str:
    return f'param_scheduler[{i}]' if isinstance(cfg.get('param_scheduler'), (list, tuple)) \
        else 'param_scheduler'


def _option(cfg, i: int, field: str) -> str:
    """The ``--cfg-options`` key of scheduler ``i``'s ``field``."""
    if isinstance(cfg.get('param_scheduler'), (list, tuple)):
        return f'param_scheduler.{i}.{field}'
    return f'param_scheduler.{field}'


def fit_schedules_to_max_iters(cfg, old_max_iters: Optional[int],
                               old_schedulers=None) -> List[str]:
    """Make the iteration-based ``param_scheduler`` entries of ``cfg`` fit
    ``cfg.train_cfg.max_iters`` (in place) and return what was changed.

    ``old_max_iters`` / ``old_schedulers``: ``max_iters`` and ``param_scheduler`` (one
    scheduler or a list) as the config file wrote them, before command-line options
    (``old_schedulers`` None: the entries of ``cfg``).
    - A scheduler whose ``end`` was ``old_max_iters`` ends at the new ``max_iters``.
    - A scheduler whose ``begin`` was, in the file, the ``end`` of the scheduler before it,
      and was not set on the command line, begins where that one ends now (a cosine after a
      warm-up shortened with ``param_scheduler.0.end=N``).
    - A ``T_max`` that was ``end - begin`` in the file follows both.
    Afterwards every iteration-based scheduler must begin before and end no later than
    ``max_iters``, else :class:`ScheduleError` names each such scheduler and the option to
    set.
    """
    train_cfg = cfg.get('train_cfg') or {}
    max_iters = train_cfg.get('max_iters')
    if max_iters is None:
        return []
    scheds = _schedulers(cfg)
    olds = [dict(s) for s in (scheds if old_schedulers is None else _as_list(old_schedulers))]
    if len(olds) != len(scheds):  # the list itself was replaced: nothing to follow
        olds = [dict(s) for s in scheds]
    changes, problems = [], []
    for i, sched in enumerate(scheds):
        if not _is_iteration_based(sched):
            continue
        key, kind, old = _key(cfg, i), sched.get('type'), olds[i]
        begin = sched.get('begin', 0)
        end = sched.get('end')
        if i > 0 and _is_iteration_based(scheds[i - 1]):
            prev_old_end, prev_end = olds[i - 1].get('end'), scheds[i - 1].get('end')
            if (prev_old_end is not None and old.get('begin', 0) == prev_old_end
                    and begin == prev_old_end and prev_end != prev_old_end):
                sched['begin'] = begin = prev_end
                changes.append(f'{key}.begin ({kind}): {prev_old_end} -> {prev_end}, '
                               f'where {_key(cfg, i - 1)} ends')
        if old_max_iters is not None and max_iters != old_max_iters and end == old_max_iters:
            sched['end'] = end = max_iters
            changes.append(f'{key}.end ({kind}): {old_max_iters} -> {max_iters}')
        old_span = (old.get('end') or 0) - old.get('begin', 0)
        if (sched.get('T_max') == old.get('T_max') == old_span and end is not None
                and end - begin != old_span):
            sched['T_max'] = end - begin
            changes.append(f'{key}.T_max ({kind}): {old_span} -> {end - begin}')
        if begin >= max_iters:
            problems.append(f'{key} ({kind}) begins at iteration {begin} (set '
                            f'{_option(cfg, i, "begin")}=N)')
        elif end is not None and end > max_iters:
            problems.append(f'{key} ({kind}) ends at iteration {end} (set '
                            f'{_option(cfg, i, "end")}=N)')
    for change in changes:
        print_log(f'schedule follows train_cfg.max_iters={max_iters}: {change}',
                  logger='current')
    if problems:
        raise ScheduleError(
            f'train_cfg.max_iters = {max_iters}, but ' + '; '.join(problems) +
            ': that part of the schedule would never run or never finish. Shorten it too '
            '(--cfg-options, N below max_iters) or keep max_iters')
    return changes


def resumed_schedule_mismatch(cfg, ckpt: dict, path: str) -> Optional[str]:
    """Why resuming checkpoint ``ckpt`` (read from ``path``) with ``cfg`` would not follow
    ``cfg``'s iteration-based schedules, or None.

    mmengine's resume loads each scheduler's saved state, ``begin`` / ``end`` included, over
    the one built from the config. A run resumed with a larger ``train_cfg.max_iters`` (so
    with schedules fitted to it, :func:`fit_schedules_to_max_iters`) would therefore keep the
    old end and train the extra iterations at the schedule's final value (0 for a poly decay
    to ``eta_min=0``) while the log said otherwise.
    """
    saved = ckpt.get('param_schedulers')
    scheds = _schedulers(cfg)
    if not isinstance(saved, list) or len(saved) != len(scheds):
        return None  # several optimizers, or another schedule list: mmengine checks those
    differ = []
    for i, (sched, state) in enumerate(zip(scheds, saved)):
        if not _is_iteration_based(sched) or not isinstance(state, dict):
            continue
        for field in ('begin', 'end'):
            want, got = sched.get(field, 0 if field == 'begin' else None), state.get(field)
            if want is not None and got is not None and want != got:
                differ.append(f'{_key(cfg, i)}.{field} ({sched.get("type")}) is {got} there '
                              f'and {want} here')
    if not differ:
        return None
    max_iters = (cfg.get('train_cfg') or {}).get('max_iters')
    return (f'cannot resume {path} with this schedule: ' + '; '.join(differ) +
            f' (train_cfg.max_iters={max_iters}). A resumed run keeps the checkpoint\'s '
            'schedule state, so it would not follow the new one. Resume with the '
            "checkpoint's train_cfg.max_iters and schedule, or start a new run from it "
            '(load_from=PATH, without --resume)')
