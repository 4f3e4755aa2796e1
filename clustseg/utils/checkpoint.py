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
import tempfile
from typing import List, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging.history_buffer import HistoryBuffer


def _numpy_globals() -> List:
    """numpy objects that pickles of arrays, scalars and dtypes refer to."""
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    # A dtype is pickled by its class in numpy >= 1.25 (e.g. numpy.dtypes.Float64DType).
    dtype_classes = [type(np.dtype(c)) for c in '?bBhHiIlLqQefdgFDGSUVOMm']
    return [_reconstruct, scalar, np.ndarray, np.dtype, *sorted(set(dtype_classes), key=str)]


#: Globals (besides torch's built-in weights-only set) found in mmengine Runner checkpoints.
MMENGINE_CHECKPOINT_GLOBALS = [HistoryBuffer, *_numpy_globals()]

_applied = {'globals': False, 'atomic': False}


def allow_mmengine_checkpoint_globals() -> List:
    """Allow-list :data:`MMENGINE_CHECKPOINT_GLOBALS` for ``torch.load(weights_only=True)``.

    Idempotent. Returns the list of globals that were allow-listed.
    """
    if not _applied['globals']:
        torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
        _applied['globals'] = True
    return list(MMENGINE_CHECKPOINT_GLOBALS)


def atomic_write_bytes(data: Union[bytes, bytearray, memoryview],
                       filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` atomically (temp file in the same dir + ``os.replace``)."""
    filepath = os.fspath(filepath)
    dirname = osp.dirname(osp.abspath(filepath))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=dirname)
    try:
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
