from .finite_loss_hook import FiniteLossHook, NonFiniteLossError
from .fresh_draws_hook import FreshDrawsHook
from .iteration_seed_hook import IterationSeedHook, iteration_seed
from .model_check_hook import ModelCheckError, ModelCheckHook, register_model_checks
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['FiniteLossHook', 'FreshDrawsHook', 'IterationSeedHook', 'iteration_seed',
           'ModelCheckError', 'ModelCheckHook', 'NonFiniteLossError', 'SafeCheckpointHook',
           'register_model_checks']
