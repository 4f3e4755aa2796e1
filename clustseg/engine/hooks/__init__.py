from .fresh_draws_hook import FreshDrawsHook
from .model_check_hook import ModelCheckError, ModelCheckHook, register_model_checks
from .safe_checkpoint_hook import SafeCheckpointHook

__all__ = ['FreshDrawsHook', 'ModelCheckError', 'ModelCheckHook', 'SafeCheckpointHook',
           'register_model_checks']
