from .base_initializer import PIXEL_LEVELS, BaseInitializer
from .grid_initializer import GridInitializer, grid_points
from .image_adaptive_initializer import ImageAdaptiveInitializer
from .learned_initializer import LearnedInitializer
from .memory_bank_initializer import MemoryBankInitializer
from .panoptic_initializer import PanopticInitializer
from .pooled_image_adaptive_initializer import PooledImageAdaptiveInitializer

__all__ = ['PIXEL_LEVELS', 'BaseInitializer', 'GridInitializer', 'grid_points',
           'ImageAdaptiveInitializer', 'LearnedInitializer', 'MemoryBankInitializer',
           'PanopticInitializer', 'PooledImageAdaptiveInitializer']
