from .clustering_core import (SUPERVISION, ClusteringCore, CoreOutput, check_supervision,
                              needs_inner_rounds, select_states)
from .mask_predictor import MaskPredictor

__all__ = ['SUPERVISION', 'ClusteringCore', 'CoreOutput', 'check_supervision', 'select_states',
           'needs_inner_rounds', 'MaskPredictor']
