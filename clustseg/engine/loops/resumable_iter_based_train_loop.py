"""Iteration-based training that resumes without loading the batches already trained."""
import logging

from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator

from clustseg.datasets.samplers import ResumableInfiniteSampler, SampleSeedingMixin
from clustseg.registry import LOOPS


class _SkippedBatches:
    """The loop's data iterator whose first ``skip`` items are None, read without loading:
    mmengine's loop calls ``next`` once per trained iteration before it trains again."""

    def __init__(self, iterator, skip: int):
        self.iterator, self.skip = iterator, skip

    def __iter__(self):
        return self

    def __next__(self):
        if self.skip > 0:
            self.skip -= 1
            return None
        return next(self.iterator)


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` that resumes at iteration ``i`` by starting its
    :class:`~clustseg.datasets.samplers.ResumableInfiniteSampler` at sample ``i x batch_size``
    instead of loading and augmenting the ``i`` batches already trained, which mmengine's loop
    does (``Advance dataloader i steps``): at the paper schedules' late iterations that took
    hours of data loading before the first training step. The batches that follow are those of
    an uninterrupted run (the same indices; the ClustSeg datasets' augmentation is seeded per
    sample). With another sampler, or a ``batch_sampler`` that groups the indices (the batch
    then is not ``batch_size`` consecutive indices), it resumes as mmengine does."""

    def run(self):
        sampler = getattr(self.dataloader, 'sampler', None)
        batch_size = getattr(self.dataloader, 'batch_size', None)
        if self._iter > 0 and isinstance(sampler, ResumableInfiniteSampler) and batch_size:
            sampler.start_at(self._iter * batch_size)
            # a new iterator reads the sampler from its new start; the loop's first one (made
            # when the loop was built, before the checkpoint was loaded) is dropped
            self.dataloader_iterator = _SkippedBatches(
                _InfiniteDataloaderIterator(self.dataloader), self._iter)
            print_log(f'resuming at sample {sampler.start} of the sampler\'s stream: the '
                      f'{self._iter} trained batches are not loaded again (mmengine\'s '
                      '"Advance dataloader" below skips them without loading)', logger='current')
            dataset = self.dataloader.dataset
            if not isinstance(dataset, SampleSeedingMixin):
                print_log(f'{type(dataset).__name__} does not seed its samples\' transforms '
                          '(SampleSeedingMixin): the resumed run reads the same samples, but '
                          'augments them otherwise than an uninterrupted run', logger='current',
                          level=logging.WARNING)
        return super().run()
