from .clustering_core import ClusteringCore, CoreOutput, needs_inner_rounds, select_states
from .mask_predictor import MaskPredictor

__all__ = ['ClusteringCore', 'CoreOutput', 'select_states', 'needs_inner_rounds', 'MaskPredictor']
