"""Stops training at the first iteration whose loss is not finite.

mmengine trains on through a NaN or infinite loss: the optimizer writes NaN into the
parameters, later checkpoints hold them, and evaluation still reports numbers (a superpixel
model with NaN parameters scores as the regular grid). :class:`FiniteLossHook` raises
:class:`NonFiniteLossError` instead, naming the iteration and the loss terms that are not
finite, before the checkpoint hook can save that iteration.
"""
import math

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`NonFiniteLossError` after a training iteration whose loss is not finite.

    Reads the values ``RuntimeInfoHook`` has just logged to the message hub (Python floats:
    no extra device sync). Its priority puts it after that hook and before the checkpoint
    hook, so no checkpoint of the failed iteration is written. Registered by
    ``tools/train.py``.
    """

    priority = 'HIGH'

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        scalars = runner.message_hub.log_scalars
        if 'train/loss' not in scalars:
            return
        loss = scalars['train/loss'].current()
        if math.isfinite(loss):
            return
        bad = [f'{key[len("train/"):]}={scalars[key].current()}'
               for key in sorted(scalars) if key.startswith('train/') and key != 'train/loss'
               and 'loss' in key and not math.isfinite(scalars[key].current())]
        raise NonFiniteLossError(
            f'the training loss is {loss} at iteration {runner.iter + 1}'
            + (f' (terms not finite: {", ".join(bad)})' if bad else '') +
            f'. Training stops here; the checkpoints in {runner.work_dir} are from earlier '
            'iterations. A NaN in the gradients of the iteration before (its grad_norm in '
            'the log) makes the parameters NaN and the next loss NaN.')
