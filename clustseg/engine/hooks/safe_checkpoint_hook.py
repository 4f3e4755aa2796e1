"""A CheckpointHook whose work dir always holds a complete checkpoint and a valid pointer."""
import inspect
import os
import os.path as osp
import re
from typing import Optional

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

    Temporary files left by a killed save are removed at the start of training.

    **A checkpoint of an iteration that validates is saved after its validation**
    (iteration-based training): mmengine saves it before, so a kill during the validation
    resumed after it and that validation was lost for good (a held-out run killed in its
    last one had no best checkpoint), and a kill after it resumed with the best score from
    before it. Here the resumed run trains those iterations again and validates them; a best
    checkpoint of an iteration after the resumed one (from the killed run) is removed at the
    start of training, since that validation runs again.

    A validation that fails with an exception (a bad val image, an evaluator error, memory)
    would then lose every iteration since the previous checkpoint;
    :func:`train_keeping_checkpoints` (``tools/train.py``) saves the waiting checkpoint
    before the exception goes on (:meth:`save_on_failure`). A kill (SIGKILL, Ctrl-C) saves
    nothing, as above. A best checkpoint whose save fails leaves the previous best file and
    the recorded best score as they were.

    Arguments are those of ``CheckpointHook``. An argument it does not know (a misspelled
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
        self._after_val = None  # the iteration whose checkpoint waits for its validation

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._after_val = None
        if not isinstance(self.file_backend, _DeferredRemovals):
            self.file_backend = _DeferredRemovals(self.file_backend)
        if is_main_process():
            folders = {runner.work_dir, self.out_dir} if osp.isdir(self.out_dir) else \
                {runner.work_dir}
            for folder in folders:
                for path in remove_stale_tmp_files(folder):
                    runner.logger.warning(f'removed {path}, left by an interrupted save')
            self._remove_later_best(runner)

    def _remove_later_best(self, runner) -> None:
        """Best checkpoints of iterations after the resumed one: their validation runs again,
        and the kept best score is the one from before it."""
        if self.by_epoch or runner.iter == 0 or not osp.isdir(self.out_dir):
            return
        pattern = re.compile('^best_.+_' + re.escape(self.filename_tmpl).replace(
            re.escape('{}'), r'(\d+)') + '$')
        live = self._live_paths()
        for name in sorted(os.listdir(self.out_dir)):
            match = pattern.match(name)
            path = self.file_backend.join_path(self.out_dir, name)
            if match and int(match.group(1)) > runner.iter and path not in live:
                self.file_backend.remove(path)
                runner.logger.warning(f'removed {path}: a best checkpoint of iteration '
                                      f'{match.group(1)}, after the resumed iteration '
                                      f'{runner.iter}; that validation runs again')

    def _validates_after_this_iter(self, runner) -> bool:
        """Whether the train loop validates right after the current iteration (mmengine's
        ``IterBasedTrainLoop`` condition)."""
        loop = runner.train_loop
        interval = getattr(loop, 'val_interval', None)
        if not interval or runner.val_loop is None:
            return False
        step = runner.iter + 1
        return step >= getattr(loop, 'val_begin', 1) and (step % interval == 0
                                                           or step == loop.max_iters)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and self._validates_after_this_iter(runner) and (
                self.every_n_train_iters(runner, self.interval, self.save_begin)
                or (self.save_last and self.is_last_train_iter(runner))):
            self._after_val = runner.iter + 1  # saved by after_val_epoch
            return
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_val_epoch(self, runner, metrics) -> None:
        super().after_val_epoch(runner, metrics)  # the best checkpoint
        self._save_after_val(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._save_after_val(runner)  # the validation did not run: save now

    def after_train(self, runner) -> None:
        self._save_after_val(runner)
        super().after_train(runner)

    def save_on_failure(self, runner) -> Optional[str]:
        """The checkpoint waiting for its validation, saved now that the run ends with an
        exception before that checkpoint was written (in the validation, or in a hook after
        this one): the training before it is kept. A resume from it does not repeat that
        validation. Returns its path, or None when no checkpoint was waiting. The file is
        written by the main process (``Runner.save_checkpoint``), so under DDP only an
        exception that reaches rank 0 (e.g. in the evaluator's ``compute_metrics``) saves it;
        another rank's ends that rank alone, and the launcher then stops rank 0."""
        if self._after_val is None:
            return None
        if is_main_process():
            runner.logger.warning(f'the run failed after iteration {self._after_val}, before '
                                  'its checkpoint (which waits for the validation) was '
                                  'written: saving it before the error (a resume goes on '
                                  'from it without that validation)')
        self._save_after_val(runner)
        return self.last_ckpt

    def _save_after_val(self, runner) -> None:
        step, self._after_val = self._after_val, None
        if step is None:
            return
        runner.logger.info(f'Saving checkpoint at {step} iterations')
        self._save_checkpoint_with_step(runner, step, meta=dict(epoch=runner.epoch, iter=step))

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
        # mmengine records the new best (score, path) and queues the old file's deletion
        # before it writes the new file: if that write fails, both are undone here
        hub = runner.message_hub.runtime_info
        before = (getattr(self, 'best_ckpt_path', None),
                  dict(getattr(self, 'best_ckpt_path_dict', {})),
                  {k: v for k, v in hub.items() if k.startswith('best_')})
        self.file_backend.defer = True
        try:
            super()._save_best_checkpoint(runner, metrics)
        except BaseException:
            self.file_backend.pending.clear()
            self.best_ckpt_path = before[0]
            if hasattr(self, 'best_ckpt_path_dict'):
                self.best_ckpt_path_dict = before[1]
            for key in [k for k in hub if k.startswith('best_')]:
                del hub[key]
            hub.update(before[2])
            raise
        finally:
            self.file_backend.defer = False
        if is_main_process():
            self.file_backend.flush(keep=self._live_paths())


def train_keeping_checkpoints(runner) -> None:
    """``runner.train()``; when it ends with an exception, each :class:`SafeCheckpointHook`
    first saves the checkpoint that waited for a validation (:meth:`~SafeCheckpointHook.
    save_on_failure`; if that save fails too, it is logged and the run's error goes on).
    ``KeyboardInterrupt`` and other non-``Exception`` ends save nothing."""
    try:
        runner.train()
    except Exception:
        for hook in runner.hooks:
            if isinstance(hook, SafeCheckpointHook):
                try:
                    hook.save_on_failure(runner)
                except Exception as err:  # the run's own error is the one to see
                    runner.logger.error(f'could not save the waiting checkpoint: {err!r}')
        raise
