"""A CheckpointHook whose work dir always holds a complete checkpoint and a valid pointer."""
import inspect
import os
import os.path as osp
import re

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

    **A checkpoint of an iteration that validates is written twice**, before its validation
    (meta ``validation_pending=True``) and again after it (with the best score that
    validation recorded). mmengine writes it once, before: a kill during the validation
    resumed after it and that validation was lost for good (a held-out run killed in its last
    one had no best checkpoint). Writing it only after the validation instead lost every
    iteration since the previous checkpoint when the validation did not finish: a kill or
    pre-emption during it, or an error on a rank other than 0, which ends the run without an
    exception on rank 0. Here nothing trained is lost, and a run resumed from a checkpoint
    whose validation is pending runs that validation first (:meth:`before_train`); a best
    checkpoint of an iteration after the resumed one (from the killed run) is removed at the
    start of training, since that validation runs again. A best checkpoint whose save fails
    leaves the previous best file and the recorded best score as they were.

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
        self._after_val = None  # the iteration whose checkpoint is written again after its val
        self._pending = None  # a resumed checkpoint's iteration whose validation did not finish

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self._after_val = None
        # resumed from a checkpoint written before its validation, which did not finish
        pending = self._pending is not None and self._pending == runner.iter > 0 and \
            runner.val_loop is not None
        if not isinstance(self.file_backend, _DeferredRemovals):
            self.file_backend = _DeferredRemovals(self.file_backend)
        if is_main_process():
            folders = {runner.work_dir, self.out_dir} if osp.isdir(self.out_dir) else \
                {runner.work_dir}
            for folder in folders:
                for path in remove_stale_tmp_files(folder):
                    runner.logger.warning(f'removed {path}, left by an interrupted save')
            self._remove_later_best(runner, inclusive=pending)
        if pending:
            runner.logger.warning(f'the checkpoint of iteration {runner.iter} was written before '
                                  'its validation, which did not finish: validating it now')
            self._after_val = runner.iter  # written again after it
            runner.val_loop.run()
        self._pending = None

    def after_load_checkpoint(self, runner, checkpoint) -> None:
        meta = checkpoint.get('meta') or {}
        self._pending = meta.get('iter') if meta.get('validation_pending') else None

    def _remove_later_best(self, runner, inclusive=False) -> None:
        """Best checkpoints of iterations after the resumed one (``inclusive``: and of that
        one, whose validation is pending): their validation runs again, and the kept best
        score is the one from before it."""
        if self.by_epoch or runner.iter == 0 or not osp.isdir(self.out_dir):
            return
        pattern = re.compile('^best_.+_' + re.escape(self.filename_tmpl).replace(
            re.escape('{}'), r'(\d+)') + '$')
        live = self._live_paths()
        for name in sorted(os.listdir(self.out_dir)):
            match = pattern.match(name)
            path = self.file_backend.join_path(self.out_dir, name)
            later = int(match.group(1)) >= runner.iter + (0 if inclusive else 1) if match \
                else False
            if later and path not in live:
                self.file_backend.remove(path)
                runner.logger.warning(f'removed {path}: a best checkpoint of iteration '
                                      f'{match.group(1)}, whose validation the run resumed at '
                                      f'iteration {runner.iter} runs again')

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
            step = runner.iter + 1
            runner.logger.info(f'Saving checkpoint at {step} iterations (before its validation)')
            self._save_checkpoint_with_step(runner, step, meta=dict(
                epoch=runner.epoch, iter=step, validation_pending=True))
            self._after_val = step  # written again by after_val_epoch
            return
        super().after_train_iter(runner, batch_idx, data_batch, outputs)

    def after_val_epoch(self, runner, metrics) -> None:
        super().after_val_epoch(runner, metrics)  # the best checkpoint
        self._save_after_val(runner)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        # the validation did not run after all (e.g. a dynamic interval): no longer pending
        self._save_after_val(runner)

    def after_train(self, runner) -> None:
        self._save_after_val(runner)
        super().after_train(runner)

    def _save_after_val(self, runner) -> None:
        step, self._after_val = self._after_val, None
        if step is None:
            return
        runner.logger.info(f'Saving checkpoint at {step} iterations again (its validation no '
                           'longer pending)')
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
