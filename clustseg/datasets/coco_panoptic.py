"""COCO panoptic dataset with checked annotations and ``skip_bad``, and the checked loader of
its PNGs (:class:`LoadPanopticAnnotationsChecked`)."""
import os.path as osp
from typing import List, Sequence

import numpy as np
from mmdet.datasets import CocoPanopticDataset
from mmdet.datasets.transforms import LoadPanopticAnnotations
from mmdet.structures.mask import BitmapMasks

from clustseg.registry import DATASETS, TRANSFORMS
from .coco_checks import CocoAnnotationChecksMixin, check_annotated_size, is_local_path
from .image_io import BadInputError, MissingInputError, read_image
from .skip_bad import SkipBadSamplesMixin

#: Segment id of unlabeled pixels in COCO panoptic PNGs (RGB 0, 0, 0).
VOID_ID = 0


def _ids_text(ids: Sequence[int], limit: int = 8) -> str:
    """``[1, 2, 3]``, or the first ``limit`` ids and how many more."""
    ids = list(ids)
    text = ', '.join(str(i) for i in ids[:limit])
    return f'[{text}]' if len(ids) <= limit else f'[{text}, ... ({len(ids)} in all)]'


@DATASETS.register_module()
class ClustSegCocoPanopticDataset(SkipBadSamplesMixin, CocoAnnotationChecksMixin,
                                  CocoPanopticDataset):
    """mmdet's ``CocoPanopticDataset`` whose image entries are checked at load time.

    Errors naming the file (a :class:`~clustseg.datasets.BadInputError`; with
    ``skip_bad=True`` a warning, and the image is dropped and counted): the image or its
    panoptic PNG does not exist (:class:`~clustseg.datasets.MissingInputError`), a segment's
    ``category_id`` is not among the JSON's ``categories``. A category that is in the JSON but
    not in ``metainfo['classes']`` is a configuration mismatch: a ``ValueError`` even with
    ``skip_bad``, and so are classes that are no category of the JSON, classes out of the
    JSON's order and things that are not the first classes
    (:meth:`CocoAnnotationChecksMixin.check_classes`). The PNG's content (segment ids versus ``segments_info``, its size versus
    the image) is checked when it is read, by :class:`LoadPanopticAnnotationsChecked`; for
    that every ``data_info`` also carries ``json_segment_ids`` (all segment ids of the image
    in the JSON, before mmdet drops degenerate ones) and ``ann_file``. An image whose
    ``segments_info`` is empty is valid (all void); in training
    ``filter_cfg=dict(filter_empty_gt=True)`` drops it, as in mmdet.

    Args:
        skip_bad (bool): warn about, drop and count bad samples instead (see
            :class:`~clustseg.datasets.SkipBadSamplesMixin`). Defaults to False.
        **kwargs: those of mmdet's ``CocoPanopticDataset``.
    """

    panoptic_json = True

    def seg_map_path(self, img_info: dict):
        """The panoptic PNG of an image entry (mmdet's naming), or None without a seg prefix."""
        if not self.data_prefix.get('seg', None):
            return None
        return osp.join(self.data_prefix['seg'], img_info['file_name'].replace('.jpg', '.png'))

    def check_sample(self, img_info: dict, anns: List[dict], img_path: str) -> None:
        super().check_sample(img_info, anns, img_path)
        for ann in anns:
            cat_id = ann['category_id']
            if cat_id not in self.cat2label:
                name = self.coco.cats[cat_id].get('name')
                raise ValueError(
                    f'{self.ann_file}: category {cat_id} ({name!r}) of image {img_path} is not '
                    f'among the dataset classes ({len(self.cat2label)} matched by name in '
                    "metainfo['classes']); the JSON and the dataset's classes disagree")
        png = self.seg_map_path(img_info)
        if png is not None and is_local_path(png, self.backend_args) and not osp.isfile(png):
            raise MissingInputError(
                png, f'panoptic PNG not found (image {img_path}, id {img_info["img_id"]}, '
                f'of {self.ann_file})')

    def parse_data_info(self, raw_data_info: dict):
        info = super().parse_data_info(raw_data_info)
        if info is not None:
            img_id = raw_data_info['raw_img_info']['img_id']
            info['json_segment_ids'] = [a['id'] for a in raw_data_info['raw_ann_info']
                                        if a.get('image_id', img_id) == img_id]
        return info


def check_panoptic_ids(ids: np.ndarray, results: dict, path: str) -> None:
    """Raise :class:`BadInputError` naming PNG ``path`` if its id map ``ids`` (H x W) does
    not fit the sample ``results``: another size than the image (``ori_shape``) or than the
    JSON's ``height`` / ``width``, segment ids that are not in the JSON's ``segments_info``
    of the image, or JSON segments that do not occur in the PNG."""
    img_path, img_id = results.get('img_path'), results.get('img_id')
    ann_file = results.get('ann_file')
    where = f'image {img_path} (id {img_id})' + (f' in {ann_file}' if ann_file else '')
    h, w = ids.shape
    if 'ori_shape' in results and tuple(results['ori_shape'][:2]) != (h, w):
        ih, iw = results['ori_shape'][:2]
        raise BadInputError(path, f'panoptic PNG is {h} x {w} (H x W) but its image '
                            f'{img_path} is {ih} x {iw}')
    check_annotated_size(path, 'panoptic PNG', (h, w), results)
    json_ids = results.get('json_segment_ids')
    if json_ids is None:  # a dataset without the full list: the segments mmdet kept
        json_ids = [s['id'] for s in results.get('segments_info', [])]
    present = np.unique(ids)
    present = set(present[present != VOID_ID].tolist())
    extra = sorted(present - set(json_ids))
    if extra:
        raise BadInputError(path, f'segment id(s) {_ids_text(extra)} in this PNG are not in '
                            f'the segments_info of {where}')
    absent = sorted(set(json_ids) - present)
    if absent:
        raise BadInputError(path, f'segment id(s) {_ids_text(absent)} of the segments_info '
                            f'of {where} do not occur in this PNG')


@TRANSFORMS.register_module()
class LoadPanopticAnnotationsChecked(LoadPanopticAnnotations):
    """mmdet's ``LoadPanopticAnnotations`` (same arguments and outputs) reading the PNG checked.

    The PNG is read with :func:`~clustseg.datasets.read_image` (missing, empty, truncated or
    non-image files raise :class:`~clustseg.datasets.BadInputError` naming it) and checked
    with :func:`check_panoptic_ids`: its size must be the image's, its segment ids must be
    those of the JSON's ``segments_info`` (void = 0 aside). mmdet's loader would silently
    treat unknown ids as void, and the PQ evaluation would fail on them later.
    """

    def _load_masks_and_semantic_segs(self, results: dict) -> None:
        path = results.get('seg_map_path', None)
        if path is None:  # inference without ground truth
            return
        ids = self.rgb2id(read_image(path, channel_order='rgb', backend_args=self.backend_args))
        check_panoptic_ids(ids, results, path)
        gt_seg = np.full_like(ids, 255)  # 255: void / ignored, as mmdet
        thing_masks = []
        for seg in results['segments_info']:
            mask = ids == seg['id']
            gt_seg[mask] = seg['category']
            if seg.get('is_thing'):
                thing_masks.append(mask.astype(np.uint8))
        if self.with_mask:
            results['gt_masks'] = BitmapMasks(thing_masks, *ids.shape)
        if self.with_seg:
            results['gt_seg_map'] = gt_seg
