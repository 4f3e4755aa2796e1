from .formatting import PackSuperpixelInputs
from .geometric import SuperpixelRandomCrop, SuperpixelRandomResize, resize_labels_nearest
from .loading import (LoadImageChecked, LoadSuperpixelAnnotations, load_segmentations,
                      read_label_image)

__all__ = [
    'LoadImageChecked', 'LoadSuperpixelAnnotations', 'PackSuperpixelInputs',
    'SuperpixelRandomCrop', 'SuperpixelRandomResize', 'load_segmentations', 'read_label_image',
    'resize_labels_nearest'
]
