"""Inner E-steps supervised through their assignment maps only (a cheaper deep supervision)."""
from typing import List, Tuple

from clustseg.registry import MODELS
from .last_e_step_per_layer import LastEStepPerLayer


@MODELS.register_module()
class InnerEStepMaps(LastEStepPerLayer):
    """Each layer's last E-step predicts and gets every loss term; the E-steps before it
    predict no class or mask and are supervised through their assignment maps ``M(t)`` only
    (the E-step map term, read with their layer's last E-step's matching,
    ``ClustSegPanopticHead._map_step_losses``): the paper's "M(t) as logit maps of K
    segments" without a stride-4 prediction per E-step. docs/benchmark.md gives its training
    cost, docs/model_zoo.md its held-out check against :class:`EveryEStep`."""

    def map_steps(self, states: List[dict], num_iters: int) -> Tuple[dict, ...]:
        return tuple(s for s in states if s['iter'] < num_iters - 1)

    def check(self, head, key: str) -> None:
        why = (f'{type(head).__name__} has no loss for E-steps supervised through their maps'
               if not getattr(head, 'supports_map_steps', False) else
               'it needs loss_weights.e_step > 0' if not head.supervise_e_step_maps else
               'it needs dense E-step maps (decoder.local_levels is empty)'
               if head.core.decoder.local_levels else None)
        if why:
            raise ValueError(f'{key}=InnerEStepMaps: {why}')
