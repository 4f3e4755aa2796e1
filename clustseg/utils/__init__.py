from .checkpoint import (MMENGINE_CHECKPOINT_GLOBALS, AtomicLocalBackend,
                         allow_mmengine_checkpoint_globals, atomic_write_bytes,
                         enable_atomic_checkpoint_save)
from .setup_env import register_all_modules, setup_env

__all__ = [
    'MMENGINE_CHECKPOINT_GLOBALS', 'AtomicLocalBackend', 'allow_mmengine_checkpoint_globals',
    'atomic_write_bytes', 'enable_atomic_checkpoint_save', 'register_all_modules', 'setup_env'
]
