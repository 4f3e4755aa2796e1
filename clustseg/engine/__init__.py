"""Training-engine parts: hooks and optimizer wrappers (registered into mmengine)."""
from .hooks import SafeCheckpointHook
from .optimizers import AutocastOptimWrapper

__all__ = ['SafeCheckpointHook', 'AutocastOptimWrapper']
