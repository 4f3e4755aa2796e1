"""The decoder's output alone supervised."""
from typing import List

from clustseg.registry import MODELS
from .base_supervision import DeepSupervision


@MODELS.register_module()
class OutputOnly(DeepSupervision):
    """Only the decoder's output (the last E-step of the last layer) predicts and is supervised:
    no deep supervision."""

    def predicting(self, states: List[dict], num_iters: int) -> List[dict]:
        return list(states[-1:])
