"""mmengine's ConcatDataset with the ClustSeg datasets' per-sample seeding."""
from mmengine.dataset import ConcatDataset

from clustseg.registry import DATASETS
from .samplers import seed_sample


@DATASETS.register_module()
class SeededConcatDataset(ConcatDataset):
    """``ConcatDataset`` that seeds each sample's transforms from its
    :class:`~clustseg.datasets.samplers.SampleIndex` (:func:`seed_sample`) before handing a
    plain index to the dataset holding it, as the ClustSeg datasets do themselves: mmengine's
    passes the part's own index on, and the seed with it would be lost."""

    def __getitem__(self, idx):
        seed_sample(idx)
        return super().__getitem__(int(idx))
