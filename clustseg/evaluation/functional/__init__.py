from .superpixel import (CONTRIB_METHODS, achievable_segmentation_accuracy, as_label_map,
                         boundary_map,
                         boundary_precision, boundary_recall, boundary_tolerance, compactness,
                         contingency_table, evaluate_superpixels, grid_superpixels,
                         lsc_superpixels, num_superpixels, seeds_superpixels, slic_superpixels,
                         undersegmentation_error)

__all__ = [
    'CONTRIB_METHODS', 'achievable_segmentation_accuracy', 'as_label_map', 'boundary_map',
    'boundary_precision',
    'boundary_recall', 'boundary_tolerance', 'compactness', 'contingency_table',
    'evaluate_superpixels', 'grid_superpixels', 'lsc_superpixels', 'num_superpixels',
    'seeds_superpixels', 'slic_superpixels', 'undersegmentation_error'
]
