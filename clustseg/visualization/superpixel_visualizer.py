"""Drawing of superpixel partitions (predicted and ground-truth) over images."""
from typing import Optional, Sequence

import mmcv
import numpy as np
from mmengine.visualization import Visualizer
from mmseg.registry import VISUALIZERS

from clustseg.datasets.transforms.geometric import resize_labels_nearest
from clustseg.evaluation.functional.superpixel import as_label_map


def superpixel_boundaries(labels: np.ndarray) -> np.ndarray:
    """Boolean H x W mask of pixels whose right or lower neighbour has a different label."""
    mask = np.zeros(labels.shape, dtype=bool)
    mask[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    mask[:-1, :] |= labels[:-1, :] != labels[1:, :]
    return mask


def mean_colour_image(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Replace every pixel by the mean colour of its superpixel."""
    _, inverse = np.unique(labels.ravel(), return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    flat = image.reshape(-1, image.shape[-1]).astype(np.float64)
    means = np.stack([np.bincount(inverse, weights=flat[:, c]) / counts
                      for c in range(flat.shape[1])], axis=1)
    return np.round(means[inverse]).reshape(image.shape).astype(np.uint8)


@VISUALIZERS.register_module()
class SuperpixelVisualizer(Visualizer):
    """Draws superpixel boundaries over an RGB image.

    ``add_datasample`` draws ``data_sample.pred_superpixels`` (falling back to ``pred_sem_seg``)
    and, with ``draw_gt``, a second panel with the boundaries of ``gt_sem_seg``; the panels are
    laid out side by side as ``[GT | prediction]``.

    Args:
        boundary_color: RGB colour of the boundaries (one pixel wide).
        fill_mean_color: fill each region with its mean colour before drawing boundaries.
        alpha: opacity of the boundary colour (1 = opaque).
        Other arguments go to :class:`mmengine.visualization.Visualizer`.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[Sequence[dict]] = None,
                 save_dir: Optional[str] = None,
                 boundary_color: Sequence[int] = (255, 255, 0),
                 fill_mean_color: bool = False,
                 alpha: float = 1.0,
                 **kwargs):
        super().__init__(name=name, image=image, vis_backends=vis_backends, save_dir=save_dir,
                         **kwargs)
        color = tuple(int(c) for c in boundary_color)
        if len(color) != 3 or not all(0 <= c <= 255 for c in color):
            raise ValueError(f'SuperpixelVisualizer: boundary_color must be 3 ints in [0, 255], '
                             f'got {boundary_color!r}')
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'SuperpixelVisualizer: alpha must be in [0, 1], got {alpha}')
        self.boundary_color = np.array(color, dtype=np.float64)
        self.fill_mean_color = fill_mean_color
        self.alpha = alpha

    def draw_superpixels(self, image: np.ndarray, labels) -> np.ndarray:
        """Return a copy of the RGB ``image`` (H x W x 3 uint8) with ``labels`` (1 x H x W or
        H x W integers, a tensor or an array) drawn on it."""
        labels = as_label_map(labels, 'labels', squeeze=True).astype(np.int64, copy=False)
        if labels.shape != image.shape[:2]:  # cv2's nearest rule, as the training transforms
            labels = resize_labels_nearest(labels, image.shape[:2])
        canvas = mean_colour_image(image, labels) if self.fill_mean_color else image.copy()
        mask = superpixel_boundaries(labels)
        blended = (1 - self.alpha) * canvas[mask] + self.alpha * self.boundary_color
        canvas[mask] = np.round(blended).astype(np.uint8)
        return canvas

    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample=None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       **kwargs) -> np.ndarray:
        """Draw a data sample; show it, write it to ``out_file`` or to the vis backends.

        Args:
            image: H x W x 3 RGB uint8 image (H x W grayscale is also accepted).
            data_sample: a ``SegDataSample`` (or ``None`` to draw the image only).
        Returns:
            The drawn RGB image.
        """
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'SuperpixelVisualizer.add_datasample({name!r}): image must be '
                             f'H x W x 3, got shape {image.shape}')
        image = image.astype(np.uint8, copy=False)

        panels = []
        if data_sample is not None:
            if draw_gt and 'gt_sem_seg' in data_sample:
                panels.append(self.draw_superpixels(image, data_sample.gt_sem_seg.data))
            if draw_pred:
                for key in ('pred_superpixels', 'pred_sem_seg'):
                    if key in data_sample:
                        panels.append(self.draw_superpixels(image, data_sample.get(key).data))
                        break
        drawn = np.concatenate(panels, axis=1) if panels else image.copy()
        self.set_image(drawn)

        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
        return drawn
