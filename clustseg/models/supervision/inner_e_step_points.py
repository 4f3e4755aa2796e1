"""Inner E-steps supervised at sampled points (a cheaper deep supervision)."""
from typing import List

from clustseg.registry import MODELS
from ..utils import check_positive_int
from .every_e_step import EveryEStep


@MODELS.register_module()
class InnerEStepPoints(EveryEStep):
    """Every E-step predicts and is supervised, the ones before each layer's last (never the
    output) at ``num_points`` uniform points per image only: their matching and every mask term
    run as on a P-pixel map, with the targets read at the input pixel under each point; their
    E-step maps stay supervised at their level (:meth:`ClustSegHead.forward`,
    ``ClustSegPanopticHead.loss_by_feat``).

    Args:
        num_points (int): P, the points drawn per image (once per step for all inner E-steps;
            default Mask2Former's 12544, 19 % of a 1024^2 crop's stride-4 map).
    """

    def __init__(self, num_points: int = 12544):
        self.num_points = check_positive_int('num_points', num_points)

    def at_points(self, states: List[dict], num_iters: int) -> List[bool]:
        return [s['iter'] < num_iters - 1 and i < len(states) - 1 for i, s in enumerate(states)]

    def check(self, head, key: str) -> None:
        if not getattr(head, 'supports_point_steps', False):
            raise ValueError(f'{key}=InnerEStepPoints: {type(head).__name__} has no loss for '
                             'point-supervised E-steps')
