from .config_checks import check_positive_int, merge_cfg
from .connectivity import enforce_connectivity
from .host import host_to_device
from .legacy_keys import rename_legacy_keys, upgrade_legacy_keys
from .padding import input_shape
from .step_random import StepRandom, mix_rank, mix_seed

__all__ = ['enforce_connectivity', 'merge_cfg', 'check_positive_int', 'StepRandom', 'mix_rank',
           'mix_seed', 'input_shape', 'host_to_device', 'rename_legacy_keys', 'upgrade_legacy_keys']
