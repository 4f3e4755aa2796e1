"""``TASK_UTILS`` registration into both mmdet and mmseg (assigners, match costs).

mmdet's ``HungarianAssigner`` builds its costs from ``mmdet.registry.TASK_UTILS``; registering
into mmseg's as well lets the same names build under ``default_scope='mmseg'``.
"""
from mmdet.registry import TASK_UTILS as DET_TASK_UTILS
from mmseg.registry import TASK_UTILS as SEG_TASK_UTILS

from clustseg.registry import _MultiRegistry

TASK_UTILS = _MultiRegistry(DET_TASK_UTILS, SEG_TASK_UTILS)

__all__ = ['TASK_UTILS']
