from .reconstruction_loss import SuperpixelReconstructionLoss
from .slic_loss import SLICLoss
from .superpixel_losses import (LAB_SCALE, cluster_means, lab_target, pixel_coords,
                                reconstruction_loss, remap_labels, rgb_to_lab,
                                slic_loss, soft_reconstruct)

__all__ = [
    'SLICLoss', 'SuperpixelReconstructionLoss', 'LAB_SCALE', 'cluster_means', 'lab_target',
    'pixel_coords', 'reconstruction_loss', 'remap_labels', 'rgb_to_lab', 'slic_loss',
    'soft_reconstruct'
]
