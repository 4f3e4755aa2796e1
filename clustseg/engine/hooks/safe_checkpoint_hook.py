"""A CheckpointHook whose work dir always holds a complete checkpoint and a valid pointer."""
import inspect
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from clustseg.utils.checkpoint import atomic_write_bytes, remove_stale_tmp_files


class _DeferredRemovals:
    """Wraps a file backend; while ``defer`` is set, ``remove``/``rmtree`` are queued."""

    def __init__(self, backend):
        self._backend = backend
        self.defer = False
        self.pending = []

    def remove(self, path):
        if self.defer:
            self.pending.append(path)
        else:
            self._backend.remove(path)

    def rmtree(self, path):
        if self.defer:
            self.pending.append(path)
        else:
            self._backend.rmtree(path)

    def flush(self, keep=()):
        """Delete the queued files / folders (a checkpoint may be either), except ``keep``."""
        pending, self.pending = self.pending, []
        for path in pending:
            if path in keep:
                continue
            if self._backend.isfile(path):
                self._backend.remove(path)
            elif self._backend.isdir(path):
                self._backend.rmtree(path)

    def __getattr__(self, name):
        return getattr(self._backend, name)


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, reordered so that a kill at any moment loses nothing.

    mmengine deletes the oldest kept checkpoint (and the previous best one) *before* writing
    the new one, and writes ``last_checkpoint`` with a plain ``open``: a kill in between can
    leave no checkpoint and a pointer to a deleted or half-written file. Here every save is

    1. the new checkpoint, written completely to a temporary file and renamed (the atomic
       ``'local'`` backend of :mod:`clustseg.utils.checkpoint`);
    2. then ``last_checkpoint``, replaced atomically;
    3. then the deletion of checkpoints beyond ``max_keep_ckpts`` and of the previous best.

    Temporary files left by a killed save are removed at the start of training. Arguments are
    those of ``CheckpointHook``. An argument it does not know (a misspelled
    ``default_hooks.checkpoint`` key) is an error when the hook is built, not at the first
    save: ``CheckpointHook`` would pass it on to ``Runner.save_checkpoint``, which already
    receives all of its parameters and takes no other.
    """

    def __init__(self, *args, **kwargs):
        known = set(inspect.signature(CheckpointHook.__init__).parameters) - {'self', 'kwargs'}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f'{type(self).__name__} (default_hooks.checkpoint in the config) '
                            f'got unknown argument(s) {", ".join(map(repr, unknown))}; it '
                            f'takes {", ".join(sorted(known))}')
        super().__init__(*args, **kwargs)

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if not isinstance(self.file_backend, _DeferredRemovals):
            self.file_backend = _DeferredRemovals(self.file_backend)
        if is_main_process():
            folders = {runner.work_dir, self.out_dir} if osp.isdir(self.out_dir) else \
                {runner.work_dir}
            for folder in folders:
                for path in remove_stale_tmp_files(folder):
                    runner.logger.warning(f'removed {path}, left by an interrupted save')

    def _save_checkpoint_with_step(self, runner, step, meta):
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            while len(self.keep_ckpt_ids) >= self.max_keep_ckpts:
                old = self.keep_ckpt_ids.popleft()
                if is_main_process():  # queued: deleted only after the new file is complete
                    self.file_backend.pending.append(self.file_backend.join_path(
                        self.out_dir, self.filename_tmpl.format(old)))
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
            backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        atomic_write_bytes(str(self.last_ckpt).encode(),
                           osp.join(runner.work_dir, 'last_checkpoint'))
        self.file_backend.flush(keep=self._live_paths())

    def _live_paths(self):
        """Files that the hook still points at (never deleted by a flush)."""
        live = {self.last_ckpt, getattr(self, 'best_ckpt_path', None)}
        live.update(getattr(self, 'best_ckpt_path_dict', {}).values())
        return live

    def _save_best_checkpoint(self, runner, metrics) -> None:
        self.file_backend.defer = True
        try:
            super()._save_best_checkpoint(runner, metrics)
        finally:
            self.file_backend.defer = False
        if is_main_process():
            self.file_backend.flush(keep=self._live_paths())
