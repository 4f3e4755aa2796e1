from .resumable_infinite_sampler import (ResumableInfiniteSampler, SampleIndex,
                                         SampleSeedingMixin, seed_sample)

__all__ = ['ResumableInfiniteSampler', 'SampleIndex', 'SampleSeedingMixin', 'seed_sample']
