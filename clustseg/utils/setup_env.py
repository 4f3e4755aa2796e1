"""Process-wide setup: checkpoint I/O fixes and registration of all modules."""
import datetime

from .checkpoint import (allow_mmengine_checkpoint_globals, enable_atomic_checkpoint_save,
                         enable_checked_checkpoint_loading)
from .pretrained import enable_safe_remote_loading

_SCOPES = ('mmseg', 'mmdet')


def setup_env() -> None:
    """Apply the checkpoint fixes (safe-globals allow-list, atomic local writes, clear errors
    for files that are not checkpoints, remote checkpoints through the same weights-only loader
    and the offline switch of :mod:`clustseg.utils.pretrained`). Idempotent.

    Called when ``clustseg`` is imported.
    """
    allow_mmengine_checkpoint_globals()
    enable_atomic_checkpoint_save()
    enable_checked_checkpoint_loading()
    enable_safe_remote_loading()


def register_all_modules(init_default_scope: bool = True, scope: str = 'mmseg') -> None:
    """Import mmdet, mmseg and all clustseg modules so that every registry is filled.

    Args:
        init_default_scope: also make ``scope`` the current mmengine ``DefaultScope``.
        scope: ``'mmseg'`` (semantic / superpixel) or ``'mmdet'`` (panoptic / instance).
    """
    if scope not in _SCOPES:
        raise ValueError(f'register_all_modules: scope must be one of {_SCOPES}, got {scope!r}')
    from mmdet.utils import register_all_modules as register_mmdet
    from mmengine import DefaultScope
    from mmseg.utils import register_all_modules as register_mmseg

    register_mmdet(init_default_scope=False)
    register_mmseg(init_default_scope=False)
    import clustseg.datasets  # noqa: F401
    import clustseg.engine  # noqa: F401
    import clustseg.evaluation  # noqa: F401
    import clustseg.models  # noqa: F401
    import clustseg.visualization  # noqa: F401
    setup_env()

    if init_default_scope:
        current = DefaultScope.get_current_instance()
        if current is None or current.scope_name != scope:
            # Instance names must be unique; the newest instance becomes the current one.
            stamp = datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')
            DefaultScope.get_instance(f'clustseg-{scope}-{stamp}', scope_name=scope)
