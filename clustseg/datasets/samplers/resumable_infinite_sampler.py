"""An infinite training sampler that can start at any position of its stream, each index
carrying the seed of its sample's random transforms."""
import itertools
import random
from typing import Iterator, Optional, Sized

import numpy as np
from mmengine.dataset import InfiniteSampler

from clustseg.registry import DATA_SAMPLERS


class SampleIndex(int):
    """A dataset index that carries ``seed``, the seed of its sample's random transforms."""

    def __new__(cls, index: int, seed: int):
        obj = super().__new__(cls, index)
        obj.seed = seed
        return obj

    def __reduce__(self):  # to the DataLoader's workers with its seed
        return SampleIndex, (int(self), self.seed)


def seed_sample(index) -> None:
    """Seed Python's and numpy's global RNGs, which the mmcv / mmdet / mmseg / ClustSeg
    transforms draw from, with the ``seed`` of a :class:`SampleIndex` (a plain int: nothing).
    The ClustSeg datasets call it before preparing a sample, so its augmentation is a function
    of the sampler's seed and the sample's position in the stream alone: the same in a
    resumed run, with any number of DataLoader workers."""
    seed = getattr(index, 'seed', None)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed)


class SampleSeedingMixin:
    """Dataset ``__getitem__`` that seeds the sample's transforms from its
    :class:`SampleIndex` (:func:`seed_sample`) and prepares it from the plain index. The
    ClustSeg datasets (through ``SkipBadSamplesMixin``) and ``SeededConcatDataset`` have it:
    the datasets whose augmentation a resumed run repeats exactly. List it before the dataset
    class."""

    def __getitem__(self, idx):
        seed_sample(idx)
        return super().__getitem__(int(idx))


@DATA_SAMPLERS.register_module()
class ResumableInfiniteSampler(InfiniteSampler):
    """mmengine's ``InfiniteSampler`` (the same index stream per rank: a seeded permutation
    per pass over the dataset, rank ``r`` of ``w`` taking every ``w``-th index) whose
    iteration starts at position :attr:`start` of the rank's stream (:meth:`start_at`), each
    index a :class:`SampleIndex` seeded by (sampler seed, rank, position).

    ``ResumableIterBasedTrainLoop`` sets the start when a run resumes at iteration ``i``
    (``i x batch_size``), instead of loading and augmenting the ``i`` batches already trained
    as mmengine's loop does (hours at the paper schedules' late iterations). The ClustSeg
    datasets seed each sample's transforms from its index (:class:`SampleSeedingMixin`), so
    the resumed run draws what an uninterrupted run draws. Other datasets (and wrappers such
    as ``RepeatDataset``, which hand their dataset a plain index) read the index as a plain
    int: their order is resumed exactly, their augmentation not (the loop warns).
    """

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: Optional[int] = None) -> None:
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        self.start = 0

    def start_at(self, position: int) -> None:
        """Begin the next iteration at ``position`` of this rank's stream (0: the beginning)."""
        if position < 0:
            raise ValueError(f'ResumableInfiniteSampler: position must be >= 0, got {position}')
        self.start = int(position)

    def __iter__(self) -> Iterator[SampleIndex]:
        stream = itertools.islice(self._indices_of_rank(), self.start, None)
        for position, index in enumerate(stream, self.start):
            seed = np.random.SeedSequence((self.seed, self.rank, position)).generate_state(1)[0]
            yield SampleIndex(index, int(seed))
