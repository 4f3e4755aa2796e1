"""Resize/crop for region-id label maps (int64, ids may exceed 255, pad value -1).

Why not mmcv ``RandomResize`` + mmseg ``RandomCrop`` + mmcv ``Pad``:

- ``RandomResize(ratio_range=...)`` scales a fixed ``scale`` tuple, not each image's own size,
  so "ratio in (0.5, 2) of the original size" needs ``keep_ratio`` tricks that only hold when
  all images share one size;
- cv2 (used by ``mmcv.imresize``/``mmcv.impad``) cannot process int64: it silently returns
  **int32** label maps (values survive only while they fit in int32);
- mmseg ``RandomCrop`` never pads, so a crop of a small image is smaller than ``crop_size``;
  mmcv ``Pad`` pads labels with 255 by default, a valid BSDS region id.

These transforms do label resizing/padding in numpy (dtype kept) and act on every key of
``results['seg_fields']``. ``gt_seg_maps`` (all annotators) is not moved.
"""
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from clustseg.registry import TRANSFORMS


def resize_labels_nearest(labels: np.ndarray, size_hw: Tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an ``H x W`` label map to ``size_hw``; dtype is kept.

    Same sampling as cv2 ``INTER_NEAREST``: source index ``floor(dst * (1 / (dst_size /
    src_size)))``, in that floating-point order.
    """
    h, w = labels.shape[:2]
    out_h, out_w = size_hw
    rows = np.minimum(np.floor(np.arange(out_h) * (1.0 / (out_h / h))).astype(np.int64), h - 1)
    cols = np.minimum(np.floor(np.arange(out_w) * (1.0 / (out_w / w))).astype(np.int64), w - 1)
    return labels[rows[:, None], cols[None, :]]


@TRANSFORMS.register_module()
class SuperpixelRandomResize(BaseTransform):
    """Resize by a ratio drawn uniformly from ``ratio_range`` times the image's own size.

    The image is resized bilinearly (``mmcv.imresize``); label maps in ``seg_fields`` use
    nearest neighbour in numpy, keeping int64. The ratio comes from numpy's global RNG.
    Updates ``img_shape``, ``scale`` (w, h), ``scale_factor`` (w, h) and ``keep_ratio``.

    Args:
        ratio_range: (min, max) ratio.
    """

    def __init__(self, ratio_range: Sequence[float] = (0.5, 2.0)) -> None:
        if len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]:
            raise ValueError('SuperpixelRandomResize: ratio_range must be (min, max) with '
                             f'0 < min <= max, got {ratio_range}')
        self.ratio_range = tuple(float(r) for r in ratio_range)

    def transform(self, results: dict) -> dict:
        lo, hi = self.ratio_range
        ratio = lo + np.random.random_sample() * (hi - lo)
        h, w = results['img'].shape[:2]
        new_h, new_w = max(1, int(round(h * ratio))), max(1, int(round(w * ratio)))
        results['img'] = mmcv.imresize(results['img'], (new_w, new_h), interpolation='bilinear')
        for key in results.get('seg_fields', []):
            if results.get(key) is not None:
                results[key] = resize_labels_nearest(results[key], (new_h, new_w))
        results['img_shape'] = (new_h, new_w)
        results['scale'] = (new_w, new_h)
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = True
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ratio_range={self.ratio_range})'


@TRANSFORMS.register_module()
class SuperpixelRandomCrop(BaseTransform):
    """Random ``crop_size`` crop; a smaller image is padded (bottom/right) up to it.

    Padding uses ``pad_val['img']`` for the image and ``pad_val['seg']`` (default -1, never a
    region id) for every label map in ``seg_fields``. Offsets use numpy's global RNG. Sets
    ``img_shape`` and ``pad_shape`` to ``crop_size`` and ``crop_bbox`` to the (y1, y2, x1, x2)
    window taken from the input.

    Args:
        crop_size: ``(h, w)`` or one int for both.
        pad_val: ``dict(img=..., seg=...)``.
    """

    def __init__(self, crop_size: Union[int, Sequence[int]],
                 pad_val: dict = dict(img=0, seg=-1)) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f'SuperpixelRandomCrop: crop_size must be a positive int or (h, w), '
                             f'got {crop_size}')
        if not isinstance(pad_val, dict) or set(pad_val) - {'img', 'seg'}:
            raise ValueError("SuperpixelRandomCrop: pad_val must be dict(img=..., seg=...), "
                             f"got {pad_val}")
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.pad_val = dict(img=pad_val.get('img', 0), seg=pad_val.get('seg', -1))

    def _crop_pad(self, arr: np.ndarray, bbox, value, key: str) -> np.ndarray:
        y1, y2, x1, x2 = bbox
        arr = arr[y1:y2, x1:x2]
        ch, cw = self.crop_size
        if arr.shape[:2] == (ch, cw):
            return np.ascontiguousarray(arr)
        if arr.dtype.kind == 'u' and value < 0:
            raise ValueError(f'SuperpixelRandomCrop: cannot pad {key} ({arr.dtype}) with '
                             f'{value}; load labels with LoadSuperpixelAnnotations (int64)')
        out = np.full((ch, cw) + arr.shape[2:], value, dtype=arr.dtype)
        out[:arr.shape[0], :arr.shape[1]] = arr
        return out

    def transform(self, results: dict) -> dict:
        h, w = results['img'].shape[:2]
        ch, cw = self.crop_size
        y1 = np.random.randint(0, max(h - ch, 0) + 1)
        x1 = np.random.randint(0, max(w - cw, 0) + 1)
        bbox = (y1, min(y1 + ch, h), x1, min(x1 + cw, w))
        results['img'] = self._crop_pad(results['img'], bbox, self.pad_val['img'], 'img')
        for key in results.get('seg_fields', []):
            if results.get(key) is not None:
                results[key] = self._crop_pad(results[key], bbox, self.pad_val['seg'], key)
        results['img_shape'] = self.crop_size
        results['pad_shape'] = self.crop_size
        results['crop_bbox'] = bbox
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size}, pad_val={self.pad_val})'
