from .resumable_infinite_sampler import ResumableInfiniteSampler, SampleIndex, seed_sample

__all__ = ['ResumableInfiniteSampler', 'SampleIndex', 'seed_sample']
