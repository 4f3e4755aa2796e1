"""``--cfg-options`` merged into a config with an error that names the option."""
from copy import deepcopy
from typing import Optional, Tuple


class ConfigOptionError(ValueError):
    """A ``--cfg-options`` entry that does not fit the config; the message names it."""


def walk_config(cfg, key: str) -> Tuple[object, int]:
    """Follows the dotted ``key`` into ``cfg`` (an mmengine ``Config`` or nested dicts): a
    dict entry by its name, a list / tuple item by its index. Returns ``(node, n)``: ``n``
    parts of ``key`` followed; all of them: ``node`` is the value at ``key``; fewer: ``node``
    is where the walk stopped, which has no ``key.split('.')[n]``."""
    node, parts = getattr(cfg, '_cfg_dict', cfg), key.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return node, i
    return node, len(parts)


def config_value(cfg, key: str):
    """The value at the dotted ``key`` of ``cfg`` (:func:`walk_config`), None when absent."""
    node, n = walk_config(cfg, key)
    return node if n == len(key.split('.')) else None


def _list_hint(cfg, key: str) -> Optional[str]:
    """Where ``key`` (dotted) steps into a list by a name: the indexed key to write instead."""
    node, i = walk_config(cfg, key)
    parts = key.split('.')
    if i < len(parts) and isinstance(node, (list, tuple)) and not parts[i].isdigit():
        return (f'{".".join(parts[:i])} is a list of {len(node)}: index it, e.g. '
                f'{".".join(parts[:i] + ["0"] + parts[i:])}')
    return None


def merge_cfg_options(cfg, options: Optional[dict], source: str = 'the config') -> None:
    """``cfg.merge_from_dict(options)``; an option that mmengine cannot merge (a list entered
    by a name, a dict key under a number) is a :class:`ConfigOptionError` naming it and
    ``source``, instead of mmengine's ``TypeError`` / ``KeyError`` that names no option."""
    if not options:
        return
    try:
        cfg.merge_from_dict(options)
        return
    except (TypeError, KeyError, ValueError, IndexError) as err:
        merge_error = err
    for key, value in options.items():  # find the option that does not fit
        try:
            deepcopy(cfg).merge_from_dict({key: value})
        except (TypeError, KeyError, ValueError, IndexError) as err:
            hint = _list_hint(cfg, key)
            raise ConfigOptionError(f'--cfg-options {key}={value!r} does not fit {source}: '
                                    f'{hint or err}') from None
    raise ConfigOptionError(f'--cfg-options do not fit {source}: {merge_error}')
