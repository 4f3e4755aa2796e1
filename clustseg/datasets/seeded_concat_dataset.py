"""mmengine's ConcatDataset with the ClustSeg datasets' per-sample seeding."""
from mmengine.dataset import ConcatDataset

from clustseg.registry import DATASETS
from .samplers import SampleSeedingMixin


@DATASETS.register_module()
class SeededConcatDataset(SampleSeedingMixin, ConcatDataset):
    """``ConcatDataset`` that seeds each sample's transforms from its
    :class:`~clustseg.datasets.samplers.SampleIndex` before handing a plain index to the
    dataset holding it, as the ClustSeg datasets do themselves
    (:class:`~clustseg.datasets.samplers.SampleSeedingMixin`): mmengine's passes the part's
    own index on, and the seed with it would be lost."""
