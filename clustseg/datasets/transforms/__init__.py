from .formatting import PackSuperpixelInputs
from .geometric import SuperpixelRandomCrop, SuperpixelRandomResize, resize_labels_nearest
from .loading import (LoadImageChecked, LoadSemanticAnnotationsChecked,
                      LoadSuperpixelAnnotations, load_segmentations, read_label_bytes,
                      read_label_image, semantic_label_lut)

__all__ = [
    'LoadImageChecked', 'LoadSemanticAnnotationsChecked', 'LoadSuperpixelAnnotations',
    'PackSuperpixelInputs',
    'SuperpixelRandomCrop', 'SuperpixelRandomResize', 'load_segmentations', 'read_label_bytes',
    'read_label_image', 'semantic_label_lut',
    'resize_labels_nearest'
]
