"""Shared base of the superpixel datasets: an image folder paired with annotations."""
import os
import os.path as osp
from typing import List, Optional

from mmengine.dataset import BaseDataset

from .image_io import MissingInputError
from .skip_bad import SkipBadSamplesMixin


def _id_sort_key(img_id: str):
    """Numeric ids in numeric order (BSDS ids are integers), others after, by name."""
    return (0, int(img_id), img_id) if img_id.isdigit() else (1, 0, img_id)


def _list_ids(folder: str, suffix: str, what: str) -> List[str]:
    """Sorted ids (file stems) of the files ending in ``suffix`` in ``folder``."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{what} folder not found: {folder}')
    ids = [f[:-len(suffix)] for f in os.listdir(folder)
           if f.endswith(suffix) and not f.startswith('.')]
    return sorted(ids, key=_id_sort_key)


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


class BaseSuperpixelDataset(SkipBadSamplesMixin, BaseDataset):
    """Images ``<img_path>/<id><img_suffix>`` with annotations under ``<seg_map_path>``.

    Subclasses set the defaults (``DEFAULT_PREFIX``, ``DEFAULT_SUFFIXES``, ``WHAT``) and build
    ``load_data_list`` on :meth:`image_ids` and :meth:`image_path`. ``skip_bad=True`` (a
    keyword argument, see :class:`SkipBadSamplesMixin`) drops and counts unreadable samples.
    """

    DEFAULT_PREFIX = dict(img_path='images', seg_map_path='labels')
    DEFAULT_SUFFIXES = ('.jpg', '.png')
    WHAT = 'image'

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Optional[dict] = None,
                 img_suffix: Optional[str] = None,
                 seg_map_suffix: Optional[str] = None,
                 ann_file: str = '',
                 pipeline: list = [],
                 test_mode: bool = False,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        data_prefix = dict(self.DEFAULT_PREFIX) if data_prefix is None else data_prefix
        for key in ('img_path', 'seg_map_path'):
            if key not in data_prefix:
                raise KeyError(f'{type(self).__name__}: data_prefix needs the key {key!r}, '
                               f'got {data_prefix}')
        self.img_suffix = img_suffix or self.DEFAULT_SUFFIXES[0]
        self.seg_map_suffix = seg_map_suffix or self.DEFAULT_SUFFIXES[1]
        super().__init__(
            ann_file=ann_file,
            metainfo=metainfo,
            data_root=data_root,
            data_prefix=data_prefix,
            pipeline=pipeline,
            test_mode=test_mode,
            **kwargs)

    def image_ids(self) -> List[str]:
        """Ids from ``ann_file`` if given, else the sorted stems of the image folder."""
        if self.ann_file:
            return _read_id_list(self.ann_file)
        img_dir = self.data_prefix['img_path']
        ids = _list_ids(img_dir, self.img_suffix, f'{self.WHAT} image')
        if not ids:
            raise FileNotFoundError(
                f'no *{self.img_suffix} images in {self.WHAT} image folder {img_dir} '
                f'(data_root + data_prefix.img_path, img_suffix={self.img_suffix!r})')
        return ids

    def image_path(self, img_id: str) -> Optional[str]:
        """Path of image ``img_id``; an error names it (and ``ann_file``) if it is missing.

        With ``skip_bad`` a missing image is recorded instead and None returned.
        """
        img_path = osp.join(self.data_prefix['img_path'], img_id + self.img_suffix)
        if not osp.isfile(img_path):
            self.bad_input(MissingInputError(
                img_path, f'{self.WHAT} image not found (listed in {self.ann_file})'))
            return None
        return img_path
