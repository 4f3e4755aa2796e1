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
   the deprecated ``file_client_args`` path (``FileClient``); mmengine's ``last_checkpoint``
   pointer is written atomically by :class:`clustseg.engine.SafeCheckpointHook`.

3. A file that is not a checkpoint (garbage, truncated, or pickling code that is not on the
   allow-list) raises :class:`InvalidCheckpointError` naming the file
   (:func:`load_from_checked_file`, registered as mmengine's loader of local paths).

4. :func:`find_resumable_checkpoint` picks the newest loadable checkpoint of a work dir for
   ``--resume``, skipping (and naming) broken ones and stale pointers.
"""
import glob
import os
import os.path as osp
import pickle
import re
import tempfile
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import print_log
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader


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

_applied = {'globals': False, 'atomic': False, 'loader': False}


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


TMP_SUFFIX = '.tmp'


def atomic_write_bytes(data: Union[bytes, bytearray, memoryview],
                       filepath: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``filepath`` atomically (temp file in the same dir + ``os.replace``)."""
    filepath = os.fspath(filepath)
    dirname = osp.dirname(osp.abspath(filepath))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f'.{osp.basename(filepath)}.', suffix=TMP_SUFFIX,
                               dir=dirname)
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


class InvalidCheckpointError(ValueError):
    """A file that cannot be read as a checkpoint; the message names the file."""


_ADVICE = ('weights_only', 'weights only', 'trust', 'documentation', 'safe_globals', 'add_safe_globals',
           'file an issue')


def _short_reason(exc: BaseException) -> str:
    """The cause of a failed weights-only load, without torch's advice about how to load the
    file anyway (which would run whatever code it pickles)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    facts = []
    for ln in lines:
        ln = ln.replace('WeightsUnpickler error:', '').strip()
        sentence = re.split(r'(?<=\.)\s+', ln)[0].rstrip('.')
        if sentence and not any(a in sentence.lower() for a in _ADVICE):
            facts.append(sentence)
    if isinstance(exc, pickle.UnpicklingError):
        detail = facts[0] if facts else 'objects outside the allow-list'
        return f'it pickles objects outside the allow-list ({detail})'
    return f'{type(exc).__name__}: {facts[0] if facts else "unreadable"}'


def load_from_checked_file(filename: str, map_location=None):
    """``torch.load(filename, weights_only=True)`` with the mmengine allow-list (named
    ``load_from_*`` as mmengine's loaders, whose log prints the name from its 11th character).

    Raises:
        FileNotFoundError: no such file.
        InvalidCheckpointError: anything else that stops the load (not a torch file, truncated,
            or holding objects outside the allow-list), with the file named.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file not found: {filename}')
    allow_mmengine_checkpoint_globals()
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear error
        raise InvalidCheckpointError(
            f'{filename} is not a valid checkpoint: {_short_reason(e)}. Only PyTorch / '
            'mmengine checkpoints of tensors, numbers, strings and containers are loaded; '
            'use a checkpoint written by this project or mmengine, or re-create it.') from None


def enable_checked_checkpoint_loading() -> None:
    """Make :func:`load_from_checked_file` mmengine's loader for local paths. Idempotent."""
    if not _applied['loader']:
        CheckpointLoader.register_scheme(prefixes='', loader=load_from_checked_file, force=True)
        _applied['loader'] = True


def remove_stale_tmp_files(folder: str) -> List[str]:
    """Delete the temporary files that :func:`atomic_write_bytes` leaves when killed."""
    removed = []
    for path in glob.glob(osp.join(glob.escape(folder), '.*' + TMP_SUFFIX)):
        try:
            os.unlink(path)
            removed.append(path)
        except FileNotFoundError:
            pass
    return removed


def load_resumable(path: str) -> Tuple[Optional[dict], Optional[str]]:
    """``(checkpoint, None)`` if ``path`` is a complete Runner checkpoint that can resume
    training, else ``(None, why not)`` (the reason names the file)."""
    try:
        ckpt = load_from_checked_file(path, map_location='cpu')
    except (InvalidCheckpointError, FileNotFoundError, OSError) as e:
        return None, str(e)
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt or 'meta' not in ckpt:
        return None, f'{path} has no state_dict/meta: not a training checkpoint'
    missing = [k for k in ('optimizer', 'message_hub') if k not in ckpt]
    if missing:
        return None, (f'{path} has no {" / ".join(missing)} state (saved for evaluation '
                      'only, e.g. by publish_model.py)')
    return ckpt, None


def _iteration(path: str) -> int:
    """N of ``iter_N.pth`` / ``epoch_N.pth`` (-1 for other names)."""
    m = re.search(r'(?:iter|epoch)_(\d+)\.pth$', osp.basename(path))
    return int(m.group(1)) if m else -1


def find_resumable_checkpoint(work_dir: str, logger='current', extra_dirs: Sequence[str] = ()
                              ) -> Tuple[Optional[str], Optional[dict], list]:
    """The newest checkpoint in ``work_dir`` and ``extra_dirs`` (where the checkpoint hook's
    ``out_dir`` puts them) that loads and can resume training, with its loaded contents (so
    that a caller need not read it again).

    Candidates are the ``*.pth`` files of those folders (``best_*`` excluded: they hold no
    optimizer state), newest first by modification time, then by iteration number (equal
    times: copies, archives, coarse file systems); ``last_checkpoint`` is only reported on
    (it is stale when a run is killed between writing a checkpoint and updating it). Each
    skipped file is logged with the reason.

    Returns:
        (path or None, its checkpoint dict or None, [(skipped path, reason), ...]).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    pointed = None
    if osp.isfile(pointer):
        with open(pointer) as f:
            pointed = f.read().strip() or None
        if pointed is None:
            print_log(f'{pointer} is empty; looking for checkpoints in {work_dir}',
                      logger=logger, level=30)
    files = [p for d in dict.fromkeys([work_dir, *extra_dirs])
             for p in glob.glob(osp.join(glob.escape(d), '*.pth'))
             if not osp.basename(p).startswith('best_')]
    files.sort(key=lambda p: (osp.getmtime(p), _iteration(p), p), reverse=True)
    skipped = []
    for path in files:
        ckpt, reason = load_resumable(path)
        if reason is None:
            if pointed is not None and osp.abspath(pointed) != osp.abspath(path):
                print_log(f'{pointer} names {pointed}, but the newest loadable checkpoint is '
                          f'{path}; resuming from the latter', logger=logger, level=30)
            return path, ckpt, skipped
        print_log(f'resume: skipping {path}: {reason}', logger=logger, level=30)
        skipped.append((path, reason))
    return None, None, skipped
