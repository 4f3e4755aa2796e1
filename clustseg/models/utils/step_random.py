"""Random draws that are a pure function of (seed, stream, step), kept in the model's state."""
import zlib

import torch
import torch.nn as nn
from mmengine.dist import get_rank

_MASK64 = (1 << 64) - 1


def mix_seed(seed: int, step: int) -> int:
    """splitmix64 of ``seed`` and ``step``: decorrelated 63-bit seeds for consecutive steps."""
    z = (seed * 0x9E3779B97F4A7C15 + (step + 1) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & ((1 << 63) - 1)


def mix_rank(seed: int, rank: int) -> int:
    """``seed`` made rank ``rank``'s own (rank 0 keeps it): mixed with ``2**32 + rank``, above
    the 32-bit stream hashes of :class:`StepRandom`."""
    return mix_seed(seed, (1 << 32) + rank) if rank else seed


class StepRandom(nn.Module):
    """A source of training-time random draws that resumes exactly.

    Each call of :meth:`generator` returns a fresh ``torch.Generator`` seeded from
    ``(seed, step)`` and advances ``step``. Both are buffers, so they are saved in checkpoints
    and restored by ``--resume``. Unlike Python's or torch's global RNG, no state outside the
    checkpoint shapes training. Ranks built with the same seed (mmengine's default,
    ``diff_rank_seed=False``) draw the same values, as a draw that sets the work of a step must
    (the superpixel K per batch: every rank waits for the slowest); with ``per_rank`` each rank
    draws its own (the rank mixed into the seed; rank 0's draws are those without it), as
    draws over each rank's own images should (loss points, Gumbel noise, memory-bank pixels:
    the same draws on every rank would correlate the batch's samples).

    Modules built with the same seed draw independent values only through distinct
    ``stream`` names: the owner names its stream (``'memory_bank'``), or the module that holds
    several instances names them apart (:class:`~clustseg.models.decoders.ClusterDecoder`
    gives each layer's E-step variant its own). The name is not state: it comes from the
    model's construction, so a resumed run has it again.

    Args:
        seed (int, optional): base seed; default ``torch.initial_seed()`` at construction,
            i.e. the seed mmengine's Runner set before building the model.
        stream (str): name of this source of draws among those of one model ('' = the base
            seed itself).
        per_rank (bool): draw differently on each DDP rank.
    """

    #: state that checkpoints written before it existed lack (kept fresh on load; see
    #: :func:`~clustseg.models.utils.upgrade_legacy_keys`)
    OPTIONAL_STATE_KEYS = ('seed', 'step')

    def __init__(self, seed=None, stream: str = '', per_rank: bool = False):
        super().__init__()
        seed = torch.initial_seed() if seed is None else int(seed)
        self.register_buffer('seed', torch.tensor(seed % (1 << 63), dtype=torch.long))
        self.register_buffer('step', torch.zeros((), dtype=torch.long))
        self.stream = stream
        self.per_rank = per_rank

    def generator(self) -> torch.Generator:
        """A CPU generator for this step; advances the step counter."""
        base = int(self.seed)
        if self.stream:
            base = mix_seed(base, zlib.crc32(self.stream.encode()))
        if self.per_rank:
            base = mix_rank(base, get_rank())
        g = torch.Generator()
        g.manual_seed(mix_seed(base, int(self.step)))
        self.step += 1
        return g

    def randint(self, low: int, high: int) -> int:
        """One integer uniform in ``[low, high]`` (both included); advances the step."""
        if high < low:
            raise ValueError(f'randint: high={high} < low={low}')
        return low + int(torch.randint(high - low + 1, (1,), generator=self.generator()))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Checkpoints written before this state existed lack both keys: keep the fresh values
        # (a new seed and step 0) instead of reporting missing keys.
        absent = [k for k in self.OPTIONAL_STATE_KEYS if prefix + k not in state_dict]
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        for k in absent:
            if prefix + k in missing_keys:
                missing_keys.remove(prefix + k)
