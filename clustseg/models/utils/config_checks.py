"""Checks of model ``train_cfg`` / ``test_cfg`` dicts: unknown keys are errors, not ignored."""
from typing import Mapping, Optional


def merge_cfg(defaults: Mapping, given: Optional[Mapping], name: str) -> dict:
    """``defaults`` updated with ``given``; a key of ``given`` not in ``defaults`` is an error
    naming it (``name`` is the config key, e.g. ``'model.test_cfg'``) and the allowed ones."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise KeyError(f'{name} has unknown key(s) {unknown}; allowed keys: {sorted(defaults)}')
    out = dict(defaults)
    out.update(given)
    return out


def check_positive_int(name: str, value) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
    return value

