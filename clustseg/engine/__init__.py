"""Training-engine parts: hooks and optimizer wrappers (registered into mmengine)."""
from .hooks import ModelCheckError, ModelCheckHook, SafeCheckpointHook, register_model_checks
from .optimizers import AutocastOptimWrapper, MergedGroupsOptimWrapperConstructor
from .schedules import ScheduleError, fit_schedules_to_max_iters

__all__ = ['ModelCheckError', 'ModelCheckHook', 'SafeCheckpointHook', 'AutocastOptimWrapper',
           'MergedGroupsOptimWrapperConstructor',
           'ScheduleError', 'fit_schedules_to_max_iters', 'register_model_checks']
