"""``--cfg-options`` merged into a config with an error that names the option."""
from copy import deepcopy
from typing import Optional


class ConfigOptionError(ValueError):
    """A ``--cfg-options`` entry that does not fit the config; the message names it."""


def _list_hint(cfg, key: str) -> Optional[str]:
    """Where ``key`` (dotted) steps into a list by a name: the indexed key to write instead."""
    node, parts = cfg, key.split('.')
    for i, part in enumerate(parts):
        if isinstance(node, (list, tuple)):
            if not part.isdigit():
                head = '.'.join(parts[:i])
                return (f'{head} is a list of {len(node)}: index it, e.g. '
                        f'{".".join(parts[:i] + ["0"] + parts[i:])}')
            node = node[int(part)] if int(part) < len(node) else None
        elif hasattr(node, 'get'):
            node = node.get(part)
        else:
            return None
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
