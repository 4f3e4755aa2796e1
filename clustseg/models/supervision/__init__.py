from .base_supervision import DeepSupervision, build_supervision
from .every_e_step import EveryEStep
from .inner_e_step_maps import InnerEStepMaps
from .inner_e_step_points import InnerEStepPoints
from .last_e_step_per_layer import LastEStepPerLayer
from .output_only import OutputOnly

__all__ = ['DeepSupervision', 'build_supervision', 'EveryEStep',
           'InnerEStepMaps', 'InnerEStepPoints', 'LastEStepPerLayer', 'OutputOnly']
