"""Seeds torch's global generator at every training iteration from (run seed, rank,
iteration), so that the draws of third-party layers resume exactly and differ across ranks.

The ClustSeg modules draw from checkpointed :class:`~clustseg.models.utils.StepRandom` state.
Layers from other libraries draw from torch's global generator: the stochastic depth of the
Swin and ConvNeXt backbones (``drop_path_rate``) and any dropout. mmengine seeds that
generator once, with the same seed on every rank (``diff_rank_seed=False``) and does not save
its state: a resumed run replays the masks of iteration 0 instead of those of its iteration,
and the ranks, drawing the same shapes in lockstep, drop the same blocks for their different
images. :class:`IterationSeedHook` reseeds it before each iteration with a pure function of
the run's seed (mmengine's ``randomness.seed``, restored on ``--resume``), the rank and the
iteration.
"""
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from clustseg.models.utils import mix_rank, mix_seed


def iteration_seed(seed: int, rank: int, iteration: int) -> int:
    """The global generator's seed at ``iteration`` of rank ``rank`` of a run seeded ``seed``
    (63 bits)."""
    return mix_seed(mix_rank(int(seed) % (1 << 63), int(rank)), int(iteration))


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """``torch.manual_seed(iteration_seed(runner.seed, rank, runner.iter))`` before every
    training iteration (the CPU generator and every CUDA device's). Registered by
    ``tools/train.py``. Data loading is not affected: its workers seed themselves."""

    priority = 'VERY_HIGH'

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        torch.manual_seed(iteration_seed(runner.seed, get_rank(), runner.iter))
