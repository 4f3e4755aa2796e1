"""Training-engine parts: hooks and optimizer wrappers (registered into mmengine)."""
from .hooks import ModelCheckError, ModelCheckHook, SafeCheckpointHook, register_model_checks
from .optimizers import AutocastOptimWrapper

__all__ = ['ModelCheckError', 'ModelCheckHook', 'SafeCheckpointHook', 'AutocastOptimWrapper',
           'register_model_checks']
