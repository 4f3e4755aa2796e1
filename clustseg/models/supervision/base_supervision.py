"""The deep-supervision interface: which E-steps a head supervises in training, and how."""
from typing import List, Tuple

from clustseg.registry import MODELS


class DeepSupervision:
    """Base class of the deep-supervision variants (the paper's Table 7a rows and the cheaper
    inner supervisions of docs/losses.md), built from config (``deep_supervision=
    dict(type='EveryEStep')`` or a registered name, :func:`build_supervision`).

    The clustering core reports one state per E/M round of every decoder layer (``layer``,
    ``iter``, ...; the output's is the last, :class:`~clustseg.models.core.CoreOutput`). In
    training a variant says:

    * :meth:`predicting`: the states that predict a (class, mask) and get every loss term, the
      output's last;
    * :meth:`map_steps`: the states that predict nothing and are supervised through their
      assignment maps only;
    * :meth:`at_points`: per predicting state, whether it predicts its masks at
      ``num_points`` uniform points per image only;
    * ``inner_rounds``: whether a predicting state can be an E/M round before its layer's last,
      whose output centers the decoder then computes (``ClusterDecoder.forward``'s
      ``inner_rounds``).

    :meth:`check` refuses a head that cannot train the variant, naming its config key. At test
    time the heads predict from the output (or their ``test_iter``) whatever the variant.
    """

    inner_rounds = False
    num_points = None

    def predicting(self, states: List[dict], num_iters: int) -> List[dict]:
        raise NotImplementedError(f'{type(self).__name__} must implement predicting()')

    def map_steps(self, states: List[dict], num_iters: int) -> Tuple[dict, ...]:
        return ()

    def at_points(self, states: List[dict], num_iters: int) -> List[bool]:
        return [False] * len(states)

    def check(self, head, key: str) -> None:
        """Raise a ``ValueError`` naming ``key`` if ``head`` cannot train this variant."""


def build_supervision(cfg, key: str, head) -> DeepSupervision:
    """A registered name, a ``dict(type=...)`` or an instance -> the variant of ``head``
    (checked, :meth:`DeepSupervision.check`). Anything else is a ``ValueError`` naming the
    config ``key`` and listing the registered variants."""
    sup = MODELS.build_of(DeepSupervision, cfg, key, 'deep-supervision variant')
    sup.check(head, key)
    return sup
