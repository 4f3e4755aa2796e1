from .det_visualizer import ClustSegDetVisualizer
from .superpixel_visualizer import SuperpixelVisualizer, mean_colour_image, superpixel_boundaries

__all__ = ['ClustSegDetVisualizer', 'SuperpixelVisualizer', 'superpixel_boundaries',
           'mean_colour_image']
