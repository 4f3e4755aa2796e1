"""Packing of superpixel samples into ``inputs`` + mmseg ``SegDataSample``."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clustseg.registry import TRANSFORMS


def _to_uint8_chw(img: np.ndarray) -> torch.Tensor:
    """``H x W (x C)`` image -> contiguous ``3 x H x W`` uint8 tensor."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f'PackSuperpixelInputs: expected an H x W x 3 (or 1) image, '
                         f'got shape {img.shape}')
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.dtype != np.uint8:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def _labels(arr: np.ndarray) -> torch.Tensor:
    if arr.dtype.kind not in 'iu':
        raise TypeError(f'PackSuperpixelInputs: label maps must be integer, got {arr.dtype}')
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.int64))


@TRANSFORMS.register_module()
class PackSuperpixelInputs(BaseTransform):
    """Pack ``img``/``gt_seg_map``/``gt_seg_maps`` for a superpixel model.

    Output: ``inputs`` (``3 x H x W`` uint8 tensor, channel order as loaded; grayscale is
    repeated to 3 channels, other dtypes are rounded and clipped to uint8) and
    ``data_samples`` (:class:`SegDataSample` with ``gt_sem_seg`` = ``1 x H x W`` int64 of
    the one annotator and, if loaded, ``gt_seg_maps`` = ``A x H x W`` int64).

    Args:
        meta_keys: keys of ``results`` copied into the sample's metainfo when present.
    """

    def __init__(self,
                 meta_keys=('img_path', 'seg_map_path', 'img_id', 'ori_shape', 'img_shape',
                            'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                            'num_annotators')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        packed = {}
        hw = None
        if 'img' in results:
            packed['inputs'] = _to_uint8_chw(results['img'])
            hw = tuple(packed['inputs'].shape[1:])
        sample = SegDataSample()
        if results.get('gt_seg_map') is not None:
            seg = results['gt_seg_map']
            if seg.ndim != 2:
                raise ValueError(f'PackSuperpixelInputs: gt_seg_map must be H x W, got '
                                 f'{seg.shape} ({results.get("seg_map_path")})')
            if hw is not None and seg.shape != hw:
                raise ValueError(f'PackSuperpixelInputs: gt_seg_map {seg.shape} does not match '
                                 f'the image {hw} ({results.get("img_path")})')
            sample.gt_sem_seg = PixelData(data=_labels(seg)[None])
        if results.get('gt_seg_maps') is not None:
            segs = results['gt_seg_maps']
            if segs.ndim != 3:
                raise ValueError(f'PackSuperpixelInputs: gt_seg_maps must be A x H x W, got '
                                 f'{segs.shape} ({results.get("seg_map_path")})')
            if hw is not None and segs.shape[1:] != hw:
                raise ValueError(
                    f'PackSuperpixelInputs: gt_seg_maps {segs.shape[1:]} does not match the '
                    f'image {hw} ({results.get("img_path")}); geometric transforms do not move '
                    'gt_seg_maps, so use LoadSuperpixelAnnotations(with_all=False) with them')
            sample.gt_seg_maps = PixelData(data=_labels(segs))
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        packed['data_samples'] = sample
        return packed

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
