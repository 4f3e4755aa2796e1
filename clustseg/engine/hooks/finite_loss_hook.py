"""Stops training at the first iteration whose loss or gradient norm is not finite.

mmengine trains on through a NaN or infinite loss: the optimizer writes NaN into the
parameters, later checkpoints hold them, and evaluation still reports numbers (a superpixel
model with NaN parameters scores as the regular grid). :class:`FiniteLossHook` raises
:class:`NonFiniteLossError` instead, naming the iteration and what is not finite, before the
checkpoint hook can save that iteration.

Under DDP each rank logs its own loss, but the gradients are all-reduced: a NaN loss on one
rank makes every rank's gradient norm NaN in the same iteration. So the hook also reads the
gradient norm that the optimizer wrapper logs when it clips (every paper config clips), and
every rank stops at the same iteration, rank 0 (which writes the checkpoints) included.
"""
import math

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """The training loss or its gradient norm became NaN or infinite."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` after a training iteration whose loss, or whose
    gradient norm (``train/grad_norm``, logged by an optimizer wrapper with ``clip_grad``), is
    not finite.

    Reads the values ``RuntimeInfoHook`` and the optimizer wrapper have just logged to the
    message hub (Python floats: no extra device sync). Its priority puts it after that hook
    and before the checkpoint hook, so no checkpoint of the failed iteration is written. The
    gradient norm is not checked under a loss scaler (mmengine's ``AmpOptimWrapper``, fp16),
    which overflows the scaled gradients on purpose and skips those steps. Registered by
    ``tools/train.py``.
    """

    priority = 'HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        scalars = runner.message_hub.log_scalars
        bad = [f'{key[len("train/"):]}={scalars[key].current()}'
               for key in sorted(scalars) if key.startswith('train/') and 'loss' in key
               and not math.isfinite(scalars[key].current())]
        scaled = getattr(runner.optim_wrapper, 'loss_scaler', None) is not None
        if 'train/grad_norm' in scalars and not scaled and \
                not math.isfinite(scalars['train/grad_norm'].current()):
            bad.append(f'grad_norm={scalars["train/grad_norm"].current()}')
        if not bad:
            return
        raise NonFiniteLossError(
            f'not finite at iteration {runner.iter + 1}: {", ".join(bad)}. Training stops '
            f'here; the checkpoints in {runner.work_dir} are from earlier iterations. Under '
            'DDP a NaN loss on one process makes every process\'s gradient norm NaN. A NaN in '
            'the gradients of the iteration before (its grad_norm in the log) makes the '
            'parameters NaN and the next loss NaN.')
