from .bsds500 import BSDS500Dataset
from .bsds_io import load_bsds_segmentations
from .camvid import (CAMVID_CLASSES, CAMVID_PALETTE, CAMVID_STUFF_CLASSES, CAMVID_THING_CLASSES,
                     ClustSegCamVidDataset)
from .coco_instance import ClustSegCocoDataset
from .coco_panoptic import ClustSegCocoPanopticDataset, LoadPanopticAnnotationsChecked
from .image_io import BadInputError, MissingInputError, read_image
from .samplers import (ResumableInfiniteSampler, SampleIndex, SampleSeedingMixin,
                       seed_sample)
from .seeded_concat_dataset import SeededConcatDataset
from .semantic import ClustSegADE20KDataset, ClustSegCOCOStuffDataset
from .skip_bad import SkipBadSamplesMixin
from .superpixel_folder import SuperpixelFolderDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'BSDS500Dataset', 'BadInputError', 'ClustSegADE20KDataset', 'ClustSegCOCOStuffDataset',
    'CAMVID_CLASSES', 'CAMVID_PALETTE', 'CAMVID_STUFF_CLASSES', 'CAMVID_THING_CLASSES',
    'ClustSegCamVidDataset',
    'ClustSegCocoDataset',
    'ClustSegCocoPanopticDataset',
    'LoadPanopticAnnotationsChecked', 'MissingInputError', 'ResumableInfiniteSampler',
    'SampleIndex', 'SampleSeedingMixin', 'SeededConcatDataset', 'SkipBadSamplesMixin',
    'SuperpixelFolderDataset', 'load_bsds_segmentations', 'read_image', 'seed_sample'
]
