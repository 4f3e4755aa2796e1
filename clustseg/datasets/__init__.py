from .bsds500 import BSDS500Dataset
from .bsds_io import load_bsds_segmentations
from .superpixel_folder import SuperpixelFolderDataset
from .transforms import *  # noqa: F401,F403

__all__ = ['BSDS500Dataset', 'SuperpixelFolderDataset', 'load_bsds_segmentations']
