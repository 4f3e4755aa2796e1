"""Load-time checks of COCO-style annotation files (instance and panoptic JSON).

Used by :class:`~clustseg.datasets.ClustSegCocoDataset` and
:class:`~clustseg.datasets.ClustSegCocoPanopticDataset` together with
:class:`~clustseg.datasets.SkipBadSamplesMixin`: a bad image entry raises a
:class:`~clustseg.datasets.BadInputError` naming the file, or with ``skip_bad=True`` is
recorded (warning + ``metainfo['skipped']``) and dropped.
"""
import os.path as osp
from typing import List, Optional

from .image_io import BadInputError, MissingInputError


def is_local_path(path: str, backend_args: Optional[dict] = None) -> bool:
    """Whether ``path`` is read from the local file system (so it can be checked cheaply)."""
    return '://' not in str(path) and not backend_args


class CocoAnnotationChecksMixin:
    """Validates each image entry of a COCO JSON while mmdet's ``load_data_list`` parses it.

    List it after :class:`SkipBadSamplesMixin` and before the mmdet dataset class. Checked in
    :meth:`parse_data_info` (cheap: a file-existence test and dictionary look-ups per image):

    - the image file exists (:class:`MissingInputError` naming it);
    - every annotation of the image has a ``category_id`` among the file's ``categories``
      (:class:`BadInputError` naming the JSON and the image).

    Subclasses add checks in :meth:`check_sample`. A bad entry is handed to ``bad_input``
    (raises, or records it with ``skip_bad``) and left out of the data list.
    """

    def load_data_list(self) -> List[dict]:
        return [info for info in super().load_data_list() if info is not None]

    def parse_data_info(self, raw_data_info: dict):
        img_info = raw_data_info['raw_img_info']
        img_id = img_info['img_id']
        anns = [a for a in raw_data_info['raw_ann_info'] if a.get('image_id', img_id) == img_id]
        img_path = osp.join(self.data_prefix['img'], img_info['file_name'])
        try:
            self.check_sample(img_info, anns, img_path)
        except BadInputError as err:
            self.bad_input(err)
            return None
        return super().parse_data_info(raw_data_info)

    def check_sample(self, img_info: dict, anns: List[dict], img_path: str) -> None:
        """Raise :class:`BadInputError` if the entry of ``img_path`` cannot be used."""
        img_id = img_info['img_id']
        if is_local_path(img_path, self.backend_args) and not osp.isfile(img_path):
            raise MissingInputError(
                img_path, f'image not found (image id {img_id} of {self.ann_file})')
        cats = self.coco.cats
        bad = [a for a in anns if a.get('category_id') not in cats]
        if bad:
            first = bad[0]
            more = f' (and {len(bad) - 1} more annotation(s) like it)' if len(bad) > 1 else ''
            raise BadInputError(
                self.ann_file,
                f'image {img_path} (id {img_id}): annotation {first.get("id")} has '
                f'category_id {first.get("category_id")!r}, which is not among the '
                f'{len(cats)} categories of this file{more}')
