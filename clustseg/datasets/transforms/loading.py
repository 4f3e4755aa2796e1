"""Checked loading of images (:class:`LoadImageChecked`) and of superpixel (region)
annotations: BSDS ``.mat`` files or label images."""
import os.path as osp
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
import mmcv
from mmcv.transforms import BaseTransform
from mmseg.datasets.transforms import LoadAnnotations as SegLoadAnnotations

from clustseg.registry import TRANSFORMS
from ..bsds_io import load_bsds_segmentations
from ..coco_checks import check_annotated_size
from ..image_io import BadInputError, read_file_bytes, read_image, structure_problem


def read_label_bytes(path: str, backend_args: Optional[dict] = None) -> bytes:
    """The bytes of label image ``path``, checked: a missing, empty, truncated or corrupt
    (JPEG / PNG structure) file raises :class:`~clustseg.datasets.image_io.BadInputError`
    naming it."""
    data = read_file_bytes(path, backend_args)
    if len(data) == 0:
        raise BadInputError(path, 'empty file (0 bytes), expected a label image')
    problem = structure_problem(data)
    if problem is not None:
        raise BadInputError(path, problem)
    return data


def read_label_image(path: str) -> np.ndarray:
    """Read a label image (PNG etc.) as ``H x W`` int64 region ids.

    Single-channel 8/16-bit images are taken as is. A 3-channel image is a colour-coded label
    map: each colour is one region, id ``R + 256 * G + 65536 * B``. Missing, empty, truncated
    or undecodable files raise :class:`~clustseg.datasets.image_io.BadInputError` naming
    ``path``.
    """
    data = read_label_bytes(path)
    label = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise BadInputError(path, 'not a readable label image (OpenCV cannot decode it)')
    if label.ndim == 3 and label.shape[2] == 1:
        label = label[..., 0]
    if label.ndim == 3:
        if label.shape[2] != 3:
            raise BadInputError(path, f'label image has {label.shape[2]} channels; expected a '
                                'single-channel label map or a 3-channel colour-coded one')
        b, g, r = (label[..., i].astype(np.int64) for i in range(3))
        scale = np.iinfo(label.dtype).max + 1 if label.dtype.kind == 'u' else 256
        return r + scale * g + scale * scale * b
    if label.dtype.kind == 'f':
        raise BadInputError(path, f'label image has float pixels ({label.dtype}); expected '
                            'integer region ids')
    return label.astype(np.int64)


def load_segmentations(seg_map_path: Union[str, Sequence[str]]) -> np.ndarray:
    """All annotators of one image as ``A x H x W`` int64.

    ``seg_map_path``: a BSDS ``.mat`` file (all its annotators), one label image, or a list
    of label images (one per annotator, all of the same size).
    """
    if isinstance(seg_map_path, (list, tuple)):
        if len(seg_map_path) == 0:
            raise ValueError('seg_map_path is an empty list')
        maps = [load_segmentations(p) for p in seg_map_path]
        for p, m in zip(seg_map_path[1:], maps[1:]):
            if m.shape[1:] != maps[0].shape[1:]:
                raise BadInputError(p, f'label map is {m.shape[1:]} but {seg_map_path[0]} is '
                                    f'{maps[0].shape[1:]}; annotators of one image must match')
        return np.concatenate(maps, axis=0)
    if not isinstance(seg_map_path, str):
        raise TypeError(f'seg_map_path must be a str or a list of str, got {seg_map_path!r}')
    if osp.splitext(seg_map_path)[1].lower() == '.mat':
        segs = np.asarray(load_bsds_segmentations(seg_map_path), dtype=np.int64)
    else:
        segs = read_label_image(seg_map_path)[None]
    return segs


@TRANSFORMS.register_module()
class LoadSuperpixelAnnotations(BaseTransform):
    """Load the region annotation(s) of ``results['seg_map_path']``.

    Adds ``gt_seg_map`` (``H x W`` int64, one annotator; registered in ``seg_fields`` so that
    mmcv/mmseg geometric transforms move it) and, when ``with_all``, ``gt_seg_maps``
    (``A x H x W`` int64, every annotator; *not* in ``seg_fields``, so keep it out of
    pipelines with geometric transforms). Also adds ``num_annotators`` and ``annotator_idx``.

    Args:
        annotator: which annotator becomes ``gt_seg_map``: ``'random'`` (numpy's global RNG,
            so mmengine seeding makes it reproducible), ``'first'``, ``'all'`` (the first, and
            requires ``with_all``) or an index (negative counts from the end).
        with_all: also store ``gt_seg_maps``.
    """

    def __init__(self, annotator: Union[str, int] = 'random', with_all: bool = True) -> None:
        if isinstance(annotator, bool) or not (
                isinstance(annotator, int) or annotator in ('random', 'first', 'all')):
            raise ValueError("LoadSuperpixelAnnotations: annotator must be 'random', 'first', "
                             f"'all' or an int, got {annotator!r}")
        if annotator == 'all' and not with_all:
            raise ValueError("LoadSuperpixelAnnotations: annotator='all' needs with_all=True")
        self.annotator = annotator
        self.with_all = with_all

    def _choose(self, num: int, path) -> int:
        if self.annotator == 'random':
            return int(np.random.randint(num))
        if self.annotator in ('first', 'all'):
            return 0
        if not -num <= self.annotator < num:
            raise IndexError(f'LoadSuperpixelAnnotations: annotator={self.annotator} but '
                             f'{path} has {num} annotator(s)')
        return self.annotator % num

    def transform(self, results: dict) -> dict:
        path = results.get('seg_map_path')
        if path is None:
            raise KeyError('LoadSuperpixelAnnotations: results has no "seg_map_path" '
                           f'(image {results.get("img_path")})')
        segs = load_segmentations(path)
        if 'img' in results and segs.shape[1:] != results['img'].shape[:2]:
            raise BadInputError(
                path if isinstance(path, str) else path[0],
                f'annotation is {segs.shape[1:]} (H x W) but its image '
                f'{results.get("img_path")} is {results["img"].shape[:2]}')
        idx = self._choose(segs.shape[0], path)
        results['gt_seg_map'] = segs[idx].copy()  # independent of gt_seg_maps
        if self.with_all:
            results['gt_seg_maps'] = segs
        results['num_annotators'] = int(segs.shape[0])
        results['annotator_idx'] = idx
        seg_fields: List[str] = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(annotator={self.annotator!r}, '
                f'with_all={self.with_all})')


@TRANSFORMS.register_module()
class LoadImageChecked(BaseTransform):
    """Load ``results['img_path']`` with :func:`~clustseg.datasets.image_io.read_image`.

    A drop-in for mmcv's ``LoadImageFromFile`` (same output keys ``img``, ``img_shape``,
    ``ori_shape``) that refuses truncated, empty and non-image files with a
    :class:`~clustseg.datasets.image_io.BadInputError` naming the file, and always gives
    ``H x W x 3`` uint8 (alpha dropped, 16 bit scaled to 8, grayscale to 3 channels). When
    the sample carries ``height`` and ``width`` (COCO datasets: from the JSON), an image of
    another size is such an error too: the JSON's polygons / boxes would not fit it.

    Args:
        to_float32: convert the image to float32.
        channel_order: ``'bgr'`` (default, as mmcv) or ``'rgb'``.
        backend_args: mmengine file backend arguments, for paths that are not local files.
    """

    def __init__(self, to_float32: bool = False, channel_order: str = 'bgr',
                 backend_args: Optional[dict] = None) -> None:
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError("LoadImageChecked: channel_order must be 'bgr' or 'rgb', got "
                             f'{channel_order!r}')
        self.to_float32 = to_float32
        self.channel_order = channel_order
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        path = results.get('img_path')
        if path is None:
            raise KeyError('LoadImageChecked: results has no "img_path" '
                           f'(keys: {sorted(results)})')
        img = read_image(path, channel_order=self.channel_order,
                         backend_args=self.backend_args)
        check_annotated_size(path, 'image', img.shape[:2], results)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(to_float32={self.to_float32}, '
                f'channel_order={self.channel_order!r}, backend_args={self.backend_args})')


def semantic_label_lut(reduce_zero_label: bool, label_map: Optional[dict] = None
                       ) -> np.ndarray:
    """The 256-entry lookup table file value -> class id of mmseg's semantic labels.

    ``reduce_zero_label``: 0 ("other") becomes 255 and every other value v becomes v - 1,
    255 staying 255 (mmseg's convention); then ``label_map`` (mmseg's class-subset map
    ``{old id: new id}``) is applied to those ids.
    """
    lut = np.arange(256, dtype=np.int64)
    if reduce_zero_label:
        lut = lut - 1
        lut[0] = lut[255] = 255
    if label_map:
        mapped = lut.copy()
        for old, new in label_map.items():
            mapped[lut == old] = new
        lut = mapped
    return lut


def _values_text(values: np.ndarray, limit: int = 8) -> str:
    values = [int(v) for v in np.unique(values)]
    text = ', '.join(str(v) for v in values[:limit])
    return text if len(values) <= limit else f'{text}, ... ({len(values)} values)'


@TRANSFORMS.register_module()
class LoadSemanticAnnotationsChecked(SegLoadAnnotations):
    """mmseg's ``LoadAnnotations`` (same arguments, same ``gt_seg_map``) reading the label
    map checked.

    Errors, each a :class:`~clustseg.datasets.image_io.BadInputError` naming the label file
    (:class:`~clustseg.datasets.image_io.MissingInputError` when it does not exist):

    - an empty, truncated or undecodable file (mmseg gives an unnamed decoder traceback);
    - a colour (3-channel) label map: class ids are one channel (mmseg would carry an
      ``H x W x 3`` map into the loss);
    - a size other than the image's (``ori_shape``), which mmseg would crop or pad silently;
    - ids above 255 (mmseg's ``uint8`` cast would wrap them);
    - after ``reduce_zero_label`` / ``label_map``, a class id outside ``[0, num_classes)``
      that is not ``ignore_index``, when the sample carries ``num_classes`` (the
      ClustSeg semantic datasets add it and ``ignore_index``): the metric would drop such
      pixels and the loss would fail on them.
    """

    def _load_seg_map(self, results: dict) -> None:
        path = results['seg_map_path']
        data = read_label_bytes(path, self.backend_args)
        try:
            label = mmcv.imfrombytes(data, flag='unchanged', backend=self.imdecode_backend)
        except Exception as err:  # noqa: BLE001 - any decoder failure names the file
            raise BadInputError(path, f'cannot decode the label map: {err}') from None
        if label is None:
            raise BadInputError(path, 'cannot decode the label map (corrupt image data)')
        if label.ndim == 3 and label.shape[2] == 1:
            label = label[..., 0]
        if label.ndim != 2:
            raise BadInputError(
                path, f'label map has {label.shape[2]} channels (a colour image?); expected a '
                'single-channel map of class ids')
        if label.dtype.kind not in 'ui':
            raise BadInputError(path, f'label map has {label.dtype} pixels; expected integer '
                                'class ids')
        if 'ori_shape' in results and tuple(label.shape) != tuple(results['ori_shape'][:2]):
            h, w = results['ori_shape'][:2]
            raise BadInputError(
                path, f'label map is {label.shape[0]} x {label.shape[1]} (H x W) but its image '
                f'{results.get("img_path")} is {h} x {w}')
        wide = (label < 0) | (label > 255)
        if wide.any():
            raise BadInputError(path, f'label map holds value(s) {_values_text(label[wide])}; '
                                'class ids must fit in 0..255')
        if self.reduce_zero_label is None:
            self.reduce_zero_label = results['reduce_zero_label']
        if self.reduce_zero_label != results['reduce_zero_label']:
            raise ValueError(
                f'{type(self).__name__}: reduce_zero_label={self.reduce_zero_label} but the '
                f'dataset has reduce_zero_label={results["reduce_zero_label"]} ({path})')
        ignore = int(results.get('ignore_index', 255))
        lut = semantic_label_lut(self.reduce_zero_label, results.get('label_map'))
        label = label.astype(np.uint8)
        gt = lut[label]
        num_classes = results.get('num_classes')
        if num_classes is not None:
            bad = ((gt < 0) | (gt >= num_classes)) & (gt != ignore)
            if bad.any():
                raise BadInputError(
                    path, f'{int(bad.sum())} pixel(s) with value(s) {_values_text(label[bad])} '
                    f'(class id(s) {_values_text(gt[bad])}) outside the {num_classes} classes '
                    f'[0, {num_classes}) and not ignore_index {ignore}')
        results['gt_seg_map'] = gt.astype(np.uint8)
        results['seg_fields'].append('gt_seg_map')
