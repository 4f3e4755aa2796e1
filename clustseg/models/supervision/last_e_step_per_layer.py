"""Each layer's last E-step supervised: the paper's Table 7a row."""
from typing import List

from clustseg.registry import MODELS
from .base_supervision import DeepSupervision


@MODELS.register_module()
class LastEStepPerLayer(DeepSupervision):
    """Only the last E-step of each decoder layer predicts and is supervised (Table 7a, "only
    final E-step of each recurrent cross-attention")."""

    def predicting(self, states: List[dict], num_iters: int) -> List[dict]:
        return [s for s in states if s['iter'] == num_iters - 1]
