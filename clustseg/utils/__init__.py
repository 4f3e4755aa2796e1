from .checkpoint import (MMENGINE_CHECKPOINT_GLOBALS, AtomicLocalBackend, InvalidCheckpointError,
                         allow_mmengine_checkpoint_globals, atomic_write_bytes,
                         enable_atomic_checkpoint_save, find_resumable_checkpoint,
                         load_from_checked_file, load_resumable, remove_stale_tmp_files)
from .cfg_options import ConfigOptionError, config_value, merge_cfg_options, walk_config
from .dist import close_distributed, launch_world_size, setup_distributed
from .host_memory import keep_freed_host_memory
from .setup_env import register_all_modules, setup_env

__all__ = [
    'MMENGINE_CHECKPOINT_GLOBALS', 'AtomicLocalBackend', 'InvalidCheckpointError',
    'allow_mmengine_checkpoint_globals', 'atomic_write_bytes', 'enable_atomic_checkpoint_save',
    'find_resumable_checkpoint', 'load_from_checked_file', 'load_resumable',
    'remove_stale_tmp_files',
    'ConfigOptionError', 'config_value', 'merge_cfg_options', 'walk_config',
    'setup_distributed', 'close_distributed', 'launch_world_size', 'keep_freed_host_memory',
    'register_all_modules', 'setup_env'
]
