from .config_checks import check_positive_int, merge_cfg
from .connectivity import enforce_connectivity
from .step_random import StepRandom

__all__ = ['enforce_connectivity', 'merge_cfg', 'check_positive_int', 'StepRandom']
