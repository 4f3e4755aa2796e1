"""BSDS500 (Berkeley Segmentation Data Set) for superpixel training and evaluation."""
import os
import os.path as osp
from typing import List, Optional

from mmengine.dataset import BaseDataset

from clustseg.registry import DATASETS


def _list_ids(folder: str, suffix: str, what: str) -> List[str]:
    """Sorted ids (file stems) of the files ending in ``suffix`` in ``folder``."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{what} folder not found: {folder}')
    ids = [f[:-len(suffix)] for f in os.listdir(folder)
           if f.endswith(suffix) and not f.startswith('.')]
    return sorted(ids, key=_id_sort_key)


def _id_sort_key(img_id: str):
    """Numeric ids in numeric order (BSDS ids are integers), others after, by name."""
    return (0, int(img_id), img_id) if img_id.isdigit() else (1, 0, img_id)


def _read_id_list(ann_file: str) -> List[str]:
    """Ids from a text file, one per line (blank lines and ``#`` comments ignored)."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'ann_file (list of image ids) not found: {ann_file}')
    with open(ann_file) as f:
        ids = [line.split('#')[0].strip() for line in f]
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f'ann_file lists no image ids: {ann_file}')
    return ids


@DATASETS.register_module()
class BSDS500Dataset(BaseDataset):
    """BSDS500 in its standard layout.

    ``data_root/images/<split>/<id>.jpg`` with ``data_root/groundTruth/<split>/<id>.mat``
    (4-9 human segmentations each), ``<split>`` in ``train``/``val``/``test``. Select the split
    with ``data_prefix``. Each sample is paired with its ``.mat``; a missing one is an error.

    Args:
        data_root: dataset root (``data_prefix`` paths are relative to it).
        data_prefix: ``img_path`` and ``seg_map_path`` folders of one split.
        img_suffix: image file ending. Defaults to ``'.jpg'``.
        seg_map_suffix: annotation file ending. Defaults to ``'.mat'``.
        ann_file: optional text file of image ids (one a line) to use instead of listing the
            image folder, e.g. the standard ``train.txt``/``val.txt``/``test.txt`` lists.
        pipeline, test_mode, **kwargs: as in :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(
        dataset_name='BSDS500',
        label_type='region_ids',
        label_description='instance-free region ids: each annotator splits the image into '
        'regions numbered arbitrarily; ids carry no class, and -1 marks padding')

    def __init__(self,
                 data_root: str = '',
                 data_prefix: dict = dict(img_path='images/val', seg_map_path='groundTruth/val'),
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.mat',
                 ann_file: str = '',
                 pipeline: list = [],
                 test_mode: bool = False,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        for key in ('img_path', 'seg_map_path'):
            if key not in data_prefix:
                raise KeyError(f'{type(self).__name__}: data_prefix needs the key {key!r}, '
                               f'got {data_prefix}')
        self.img_suffix = img_suffix
        self.seg_map_suffix = seg_map_suffix
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """One dict per image: ``img_path``, ``seg_map_path``, ``img_id``, ``seg_fields``."""
        img_dir = self.data_prefix['img_path']
        seg_dir = self.data_prefix['seg_map_path']
        if self.ann_file:
            ids = _read_id_list(self.ann_file)
        else:
            ids = _list_ids(img_dir, self.img_suffix, 'BSDS500 image')
            if not ids:
                raise FileNotFoundError(
                    f'no *{self.img_suffix} images in BSDS500 image folder {img_dir}')
        data_list = []
        for img_id in ids:
            img_path = osp.join(img_dir, img_id + self.img_suffix)
            seg_path = osp.join(seg_dir, img_id + self.seg_map_suffix)
            if not osp.isfile(img_path):
                raise FileNotFoundError(f'BSDS500 image not found: {img_path} '
                                        f'(listed in {self.ann_file})')
            if not osp.isfile(seg_path):
                raise FileNotFoundError(
                    f'BSDS500 annotation not found: {seg_path} (for image {img_path})')
            data_list.append(
                dict(img_path=img_path, seg_map_path=seg_path, img_id=img_id, seg_fields=[]))
        return data_list
