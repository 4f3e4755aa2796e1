"""BSDS500 (Berkeley Segmentation Data Set) for superpixel training and evaluation."""
import os.path as osp
from typing import List

from clustseg.registry import DATASETS
from .base_superpixel_dataset import BaseSuperpixelDataset
from .image_io import MissingInputError


@DATASETS.register_module()
class BSDS500Dataset(BaseSuperpixelDataset):
    """BSDS500 in its standard layout.

    ``data_root/images/<split>/<id>.jpg`` with ``data_root/groundTruth/<split>/<id>.mat``
    (4-9 human segmentations each), ``<split>`` in ``train``/``val``/``test``. Select the split
    with ``data_prefix``. Each sample is paired with its ``.mat``; a missing one is an error
    (with ``skip_bad=True``: a warning, and the image is skipped and counted).

    Args:
        data_root: dataset root (``data_prefix`` paths are relative to it).
        data_prefix: ``img_path`` and ``seg_map_path`` folders of one split.
        img_suffix: image file ending. Defaults to ``'.jpg'``.
        seg_map_suffix: annotation file ending. Defaults to ``'.mat'``.
        ann_file: optional text file of image ids (one a line) to use instead of listing the
            image folder, e.g. the standard ``train.txt``/``val.txt``/``test.txt`` lists.
        skip_bad: drop (with a warning) and count unreadable samples, see
            :class:`~clustseg.datasets.skip_bad.SkipBadSamplesMixin`. Defaults to False.
        pipeline, test_mode, **kwargs: as in :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(
        dataset_name='BSDS500',
        label_type='region_ids',
        label_description='instance-free region ids: each annotator splits the image into '
        'regions numbered arbitrarily; ids carry no class, and -1 marks padding')
    DEFAULT_PREFIX = dict(img_path='images/val', seg_map_path='groundTruth/val')
    DEFAULT_SUFFIXES = ('.jpg', '.mat')
    WHAT = 'BSDS500'


    def load_data_list(self) -> List[dict]:
        """One dict per image: ``img_path``, ``seg_map_path``, ``img_id``, ``seg_fields``."""
        seg_dir = self.data_prefix['seg_map_path']
        data_list = []
        for img_id in self.image_ids():
            img_path = self.image_path(img_id)
            if img_path is None:
                continue
            seg_path = osp.join(seg_dir, img_id + self.seg_map_suffix)
            if not osp.isfile(seg_path):
                self.bad_input(MissingInputError(
                    seg_path, f'BSDS500 annotation not found (for image {img_path})'))
                continue
            data_list.append(
                dict(img_path=img_path, seg_map_path=seg_path, img_id=img_id, seg_fields=[]))
        return data_list
