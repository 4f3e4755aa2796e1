"""StepRandom draws per rank where the draws cover each rank's own images, and agree across
ranks where they set a step's work."""
import torch

from clustseg.models.utils import StepRandom, step_random


def _draws(rng, n=3):
    return [torch.rand(4, generator=rng.generator()) for _ in range(n)]


def test_per_rank_draws_differ_across_ranks_and_rank_0_keeps_the_shared_draws(monkeypatch):
    shared, own = StepRandom(seed=7, stream='s'), StepRandom(seed=7, stream='s', per_rank=True)
    for rank in (0, 1, 2):
        monkeypatch.setattr(step_random, 'get_rank', lambda r=rank: r)
        for rng in (shared, own):
            rng.step.zero_()
        a, b = _draws(shared), _draws(own)
        if rank == 0:
            rank0 = b
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y)
        else:
            for x, y, z in zip(a, b, rank0):
                assert not torch.equal(x, y) and not torch.equal(y, z)
    # the step is state: a copy loaded from a checkpoint continues the same draws
    own.step.zero_()
    _draws(own, 2)
    copy = StepRandom(seed=1, stream='s', per_rank=True)
    copy.load_state_dict(own.state_dict())
    for x, y in zip(_draws(own), _draws(copy)):
        torch.testing.assert_close(x, y)


def test_which_draws_are_per_rank(repo_root):
    """Loss points, memory-bank pixels and Gumbel noise per rank; the superpixel K shared."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from clustseg.models.e_steps.gumbel_hard_assignment import GumbelHardAssignment
    from clustseg.registry import MODELS

    def build(path):
        cfg = Config.fromfile(str(repo_root / path))
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            return MODELS.build(cfg.model)

    pan = build('configs/panoptic/clustseg_compact_embedded.py')
    memory_banks = [m for m in pan.modules() if hasattr(m, 'queue')]
    assert pan.panoptic_head.rng.per_rank and memory_banks
    assert all(m.sampler.per_rank for m in memory_banks)
    assert GumbelHardAssignment().rng.per_rank
    assert not build('configs/superpixel/clustseg_compact_embedded.py').k_random.per_rank
