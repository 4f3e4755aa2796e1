"""Training-engine parts: hooks, the training loop and optimizer wrappers (registered into
mmengine)."""
from .hooks import (FiniteLossHook, FreshDrawsHook, IterationSeedHook, ModelCheckError,
                    ModelCheckHook, NonFiniteLossError, SafeCheckpointHook, register_model_checks)
from .loops import ResumableIterBasedTrainLoop
from .optimizers import AutocastOptimWrapper, MergedGroupsOptimWrapperConstructor
from .schedules import (ScheduleError, check_val_interval, fit_schedules_to_max_iters,
                        resumed_schedule_mismatch)

__all__ = ['FiniteLossHook', 'FreshDrawsHook', 'IterationSeedHook', 'ModelCheckError',
           'ModelCheckHook', 'NonFiniteLossError', 'SafeCheckpointHook',
           'AutocastOptimWrapper', 'MergedGroupsOptimWrapperConstructor',
           'ResumableIterBasedTrainLoop', 'ScheduleError', 'check_val_interval',
           'fit_schedules_to_max_iters', 'resumed_schedule_mismatch', 'register_model_checks']
