"""A run started from another run's weights draws its own random numbers."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from clustseg.models.utils import StepRandom


@HOOKS.register_module()
class FreshDrawsHook(Hook):
    """Keep this run's :class:`~clustseg.models.utils.StepRandom` state when a training run
    loads weights with ``load_from`` (not ``--resume``).

    The ``seed`` / ``step`` buffers of every ``StepRandom`` (the K per batch, the loss points,
    the memory-bank samples, the Gumbel noise) are dropped from the loaded state dict, so the
    model keeps the values it was built with: this run's ``randomness.seed`` and step 0.
    Loaded as weights, they made every run fine-tuned from one checkpoint draw the same values,
    continuing the old run's sequence, whatever its seed. A resumed run keeps them (it
    continues that sequence). tools/train.py registers it.
    """

    priority = 'LOW'  # after ModelCheckHook, which checks the checkpoint as it is

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):
            return
        state = checkpoint.get('state_dict', checkpoint)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name, module in model.named_modules():
            if isinstance(module, StepRandom):
                for key in ('seed', 'step'):
                    state.pop(f'{name}.{key}', None)
                    state.pop(f'module.{name}.{key}', None)
