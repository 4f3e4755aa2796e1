from .det_visualizer import ClustSegDetVisualizer
from .superpixel_visualizer import (SuperpixelVisualizer, mean_colour_image, resize_labels,
                                    superpixel_boundaries)

__all__ = ['ClustSegDetVisualizer', 'SuperpixelVisualizer', 'superpixel_boundaries',
           'mean_colour_image', 'resize_labels']
