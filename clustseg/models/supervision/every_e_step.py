"""Every E-step of every layer supervised in full: the paper's deep supervision."""
from typing import List

from clustseg.registry import MODELS
from .base_supervision import DeepSupervision


@MODELS.register_module()
class EveryEStep(DeepSupervision):
    """Every E-step of every decoder layer predicts and gets every loss term (App. B.3, "deep
    supervision to train every E-step"; the recipes' setting)."""

    inner_rounds = True

    def predicting(self, states: List[dict], num_iters: int) -> List[dict]:
        return list(states)
