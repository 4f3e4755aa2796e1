"""Checkpoint I/O fixes for mmengine 0.10.7 on recent torch.

1. ``torch.load`` defaults to ``weights_only=True`` (torch >= 2.6). mmengine's loaders call it
   without that argument, so its own Runner checkpoints (message hub with ``HistoryBuffer`` and
   numpy arrays, numpy scalars/dtypes in meta) are rejected. We keep ``weights_only=True`` and
   allow-list exactly the extra globals such a checkpoint needs (see
   :data:`MMENGINE_CHECKPOINT_GLOBALS`); anything else in a checkpoint still fails to load.

2. ``mmengine.runner.save_checkpoint`` serialises into memory and then calls the local file
   backend's ``put``, which opens the final path with ``'wb'``: a crash or a full disk while
   writing truncates the existing checkpoint. We register :class:`AtomicLocalBackend` as the
   ``'local'`` backend (prefix ``''``): it writes to a temporary file in the same directory,
   fsyncs it and ``os.replace``-s it over the target, so the target is either the old or the new
   complete file. This covers every local write through ``get_file_backend`` (checkpoints by
   ``CheckpointHook`` / ``Runner.save_checkpoint``, best checkpoints, text dumps). Not covered:
   the deprecated ``file_client_args`` path (``FileClient``) and mmengine's small
   ``last_checkpoint`` pointer file, which is written with a plain ``open``.
"""
import os
import os.path as osp
import pickle
import tempfile
from typing import List, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer


_HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name):
    """Stand-in for ``builtins.getattr`` during weights-only loading.

    Pickle protocol 2 stores ``HistoryBuffer.min`` (kept in every buffer's
    ``statistics_methods``) as ``getattr(HistoryBuffer, 'min')``. Only that pattern is allowed:
    a statistics method of ``HistoryBuffer``; allowing the real ``getattr`` would be much wider.
    """
    allowed = set(_HISTORY_BUFFER_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights-only load: getattr({obj!r}, {name!r}) is not allowed (only statistics methods '
        'of mmengine HistoryBuffer are)')


def _numpy_dtype_classes() -> List[type]:
    """Concrete dtype classes (``numpy.dtypes.Float64DType``, ...).

    A pickled dtype is rebuilt as ``numpy.dtype(...)`` followed by BUILD on the result, and
    weights-only BUILD requires the *type* of the instance (the concrete class) to be allowed.
    """
    classes = {type(np.dtype(code)) for code in np.typecodes['All']}
    dtypes_module = getattr(np, 'dtypes', None)  # numpy >= 1.25
    for name in getattr(dtypes_module, '__all__', ()):
        obj = getattr(dtypes_module, name)
        if isinstance(obj, type) and issubclass(obj, np.dtype) and obj is not np.dtype:
            classes.add(obj)
    classes.discard(np.dtype)
    return sorted(classes, key=lambda c: c.__qualname__)


def _mmengine_checkpoint_globals() -> List:
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    return [
        # message_hub.log_scalars: HistoryBuffer objects holding numpy arrays
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        # numpy arrays, numpy scalars (e.g. seeds or metrics in meta) and their dtypes; the
        # module was renamed numpy.core -> numpy._core in numpy 2, so both spellings are listed
        np.ndarray,
        np.dtype,
        (_reconstruct, 'numpy._core.multiarray._reconstruct'),
        (_reconstruct, 'numpy.core.multiarray._reconstruct'),
        (scalar, 'numpy._core.multiarray.scalar'),
        (scalar, 'numpy.core.multiarray.scalar'),
        *_numpy_dtype_classes(),
    ]


#: Globals, beyond torch's built-in weights-only set, that mmengine Runner checkpoints need
#: (found with ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a Runner checkpoint
#: with message hub, optimizer and param-scheduler state and numpy values in ``meta``):
#: ``numpy.ndarray``, ``numpy.dtype``, ``numpy._core.multiarray._reconstruct``,
#: ``numpy._core.multiarray.scalar``, ``mmengine.logging.history_buffer.HistoryBuffer`` and
#: ``builtins.getattr`` (narrowed, see :func:`_history_buffer_getattr`) as GLOBALs, plus the
#: concrete ``numpy.dtypes.*DType`` classes, which are never named in the pickle but are the
#: types of the rebuilt dtype objects that the unpickler's BUILD step checks.
MMENGINE_CHECKPOINT_GLOBALS = _mmengine_checkpoint_globals()

_applied = {'globals': False, 'atomic': False}


def allow_mmengine_checkpoint_globals() -> List:
    """Allow-list :data:`MMENGINE_CHECKPOINT_GLOBALS` for ``torch.load(weights_only=True)``.

    Idempotent. Returns the list of globals that were allow-listed.
    """
    if not _applied['globals']:
        torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
        _applied['globals'] = True
    return list(MMENGINE_CHECKPOINT_GLOBALS)


def _umask_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _umask_file_mode()


def atomic_write_bytes(data: Union[bytes, bytearray, memoryview],
                       filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` atomically (temp file in the same dir + ``os.replace``)."""
    filepath = os.fspath(filepath)
    dirname = osp.dirname(osp.abspath(filepath))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=dirname)
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.chmod(tmp, _FILE_MODE)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class AtomicLocalBackend(LocalBackend):
    """mmengine ``LocalBackend`` whose ``put``/``put_text`` replace the target atomically."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)


def enable_atomic_checkpoint_save() -> None:
    """Register :class:`AtomicLocalBackend` as mmengine's ``'local'`` backend. Idempotent."""
    if not _applied['atomic']:
        register_backend('local', AtomicLocalBackend, force=True, prefixes='')
        # Singletons made earlier by get_file_backend(..., enable_singleton=True).
        from mmengine.fileio import io as mm_io
        for key, backend in list(mm_io.backend_instances.items()):
            if type(backend) is LocalBackend:
                mm_io.backend_instances[key] = AtomicLocalBackend()
        _applied['atomic'] = True
