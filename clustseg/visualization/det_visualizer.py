"""mmdet's local visualizer for the panoptic / instance configs, drawing images without any
panoptic segment."""
from typing import List, Optional

import numpy as np
from mmdet.registry import VISUALIZERS
from mmdet.visualization import DetLocalVisualizer


@VISUALIZERS.register_module()
class ClustSegDetVisualizer(DetLocalVisualizer):
    """:class:`mmdet.visualization.DetLocalVisualizer` that draws a panoptic map with no
    segment (every pixel void, as an early checkpoint or an empty scene gives) as the bare
    image. mmdet 3.3's ``_draw_panoptic_seg`` stacks the segments' masks and fails on none,
    which ended a whole ``tools/test.py --show-dir`` run at the first such image."""

    def _draw_panoptic_seg(self, image: np.ndarray, panoptic_seg, classes: Optional[List[str]],
                           palette: Optional[List]) -> np.ndarray:
        if (np.asarray(panoptic_seg.sem_seg[0]) == len(classes)).all():  # all void
            return image
        return super()._draw_panoptic_seg(image, panoptic_seg, classes, palette)
