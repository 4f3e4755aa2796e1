"""Parameter schedules that follow ``train_cfg.max_iters``.

The configs write each schedule's end as the iteration count (``end=max_iters``), a value
fixed when the config is read: ``--cfg-options train_cfg.max_iters=10`` left the cosine's end
(and ``T_max``) at the old count, so the run stopped in the middle of the decay without a
word. :func:`fit_schedules_to_max_iters` (called by tools/train.py) moves the end of every
iteration-based scheduler that ended at the old ``max_iters`` to the new one, and refuses a
schedule that still does not fit (a warm-up longer than the run, a scheduler beginning after
it) with an error naming the config keys.
"""
from typing import List, Optional

from mmengine.logging import print_log


class ScheduleError(ValueError):
    """A ``param_scheduler`` that does not fit ``train_cfg.max_iters``; names the keys."""


def _schedulers(cfg) -> list:
    scheds = cfg.get('param_scheduler')
    if scheds is None:
        return []
    return list(scheds) if isinstance(scheds, (list, tuple)) else [scheds]


def _is_iteration_based(sched) -> bool:
    # mmengine's schedulers default to by_epoch=True (then begin / end count epochs)
    return not sched.get('by_epoch', True)


def _key(cfg, i: int) -> str:
    return f'param_scheduler[{i}]' if isinstance(cfg.get('param_scheduler'), (list, tuple)) \
        else 'param_scheduler'


def fit_schedules_to_max_iters(cfg, old_max_iters: Optional[int]) -> List[str]:
    """Make the iteration-based ``param_scheduler`` entries of ``cfg`` fit
    ``cfg.train_cfg.max_iters`` (in place) and return what was changed.

    A scheduler whose ``end`` was ``old_max_iters`` (the value before command-line options)
    ends at the new ``max_iters``; its ``T_max``, if it was ``old_max_iters - begin``, follows.
    Afterwards every iteration-based scheduler must begin before and end no later than
    ``max_iters``, else :class:`ScheduleError` names each such key.
    """
    train_cfg = cfg.get('train_cfg') or {}
    max_iters = train_cfg.get('max_iters')
    if max_iters is None:
        return []
    changes, problems = [], []
    for i, sched in enumerate(_schedulers(cfg)):
        if not _is_iteration_based(sched):
            continue
        key, kind = _key(cfg, i), sched.get('type')
        begin = sched.get('begin', 0)
        end = sched.get('end')
        if old_max_iters is not None and max_iters != old_max_iters and end == old_max_iters:
            sched['end'] = end = max_iters
            changes.append(f'{key}.end ({kind}): {old_max_iters} -> {max_iters}')
            if sched.get('T_max') == old_max_iters - begin:
                sched['T_max'] = max_iters - begin
                changes.append(f'{key}.T_max ({kind}): {old_max_iters - begin} -> '
                               f'{max_iters - begin}')
        if begin >= max_iters:
            problems.append(f'{key} ({kind}) begins at iteration {begin}')
        elif end is not None and end > max_iters:
            problems.append(f'{key} ({kind}) ends at iteration {end}')
    for change in changes:
        print_log(f'schedule follows train_cfg.max_iters={max_iters}: {change}',
                  logger='current')
    if problems:
        raise ScheduleError(
            f'train_cfg.max_iters = {max_iters}, but ' + '; '.join(problems) +
            ': that part of the schedule would never run or never finish. Shorten it too '
            '(e.g. --cfg-options param_scheduler.0.end=N, list index of the scheduler) or '
            'keep max_iters')
    return changes
