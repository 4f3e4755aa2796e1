from .autocast_optim_wrapper import AutocastOptimWrapper
from .merged_groups_constructor import MergedGroupsOptimWrapperConstructor, merge_param_groups

__all__ = ['AutocastOptimWrapper', 'MergedGroupsOptimWrapperConstructor', 'merge_param_groups']
