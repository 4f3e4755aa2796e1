"""Folder of images + label maps (e.g. the NYUv2 superpixel benchmark)."""
import os
import os.path as osp
import re
from typing import Dict, List

from clustseg.registry import DATASETS
from .base_superpixel_dataset import BaseSuperpixelDataset
from .image_io import MissingInputError


@DATASETS.register_module()
class SuperpixelFolderDataset(BaseSuperpixelDataset):
    """Images ``<img_path>/<id><img_suffix>`` with label maps in ``<seg_map_path>``.

    Annotator rule, per image id:

    - ``<id><seg_map_suffix>`` exists: it is the only annotation of that image;
    - otherwise every ``<id>_<k><seg_map_suffix>`` (``k`` a non-negative integer) is one
      annotator, ordered by ``k`` (numerically), so ``k=0`` (or the smallest) is the "first";
    - a label file whose stem is itself an image id always belongs to that image.

    An image with no label file is an error (with ``skip_bad=True``: a warning, and the image
    is skipped and counted). Label PNGs are single-channel (8 or 16 bit) region
    ids; see :class:`LoadSuperpixelAnnotations`. ``seg_map_path`` in a sample is a ``str`` for
    one annotator and a ``list`` of ``str`` for several.

    Args:
        data_root: dataset root (``data_prefix`` paths are relative to it).
        data_prefix: ``img_path`` and ``seg_map_path`` folders.
        img_suffix: image file ending. Defaults to ``'.jpg'``.
        seg_map_suffix: label file ending. Defaults to ``'.png'``.
        ann_file: optional text file of image ids (one a line) instead of listing the folder.
        skip_bad: drop (with a warning) and count unreadable samples, see
            :class:`~clustseg.datasets.skip_bad.SkipBadSamplesMixin`. Defaults to False.
        pipeline, test_mode, **kwargs: as in :class:`mmengine.dataset.BaseDataset`.
    """

    METAINFO = dict(
        dataset_name='SuperpixelFolder',
        label_type='region_ids',
        label_description='instance-free region ids: regions numbered arbitrarily per label '
        'map; ids carry no class, and -1 marks padding')

    def _group_label_files(self, seg_dir: str, img_ids: List[str]) -> Dict[str, List[str]]:
        """Map each image id to its label file names, following the annotator rule."""
        if not osp.isdir(seg_dir):
            raise FileNotFoundError(f'label folder not found: {seg_dir}')
        suffix = self.seg_map_suffix
        stems = [f[:-len(suffix)] for f in os.listdir(seg_dir)
                 if f.endswith(suffix) and not f.startswith('.')]
        id_set, stem_set = set(img_ids), set(stems)
        groups: Dict[str, List[tuple]] = {}
        pattern = re.compile(r'^(.*)_(\d+)$')
        for stem in stems:
            if stem in id_set:
                continue  # an exact match, handled below
            m = pattern.match(stem)
            if m and m.group(1) in id_set:
                groups.setdefault(m.group(1), []).append((int(m.group(2)), stem))
        out = {}
        for img_id in img_ids:
            if img_id in stem_set:
                out[img_id] = [img_id + suffix]
            elif img_id in groups:
                out[img_id] = [s + suffix for _, s in sorted(groups[img_id])]
        return out

    def load_data_list(self) -> List[dict]:
        """One dict per image: ``img_path``, ``seg_map_path``, ``img_id``, ``seg_fields``."""
        seg_dir = self.data_prefix['seg_map_path']
        ids = self.image_ids()
        labels = self._group_label_files(seg_dir, ids)
        data_list = []
        for img_id in ids:
            img_path = self.image_path(img_id)
            if img_path is None:
                continue
            if img_id not in labels:
                self.bad_input(MissingInputError(
                    osp.join(seg_dir, img_id + self.seg_map_suffix),
                    f'no label map for image {img_path} (expected this file or '
                    f'{img_id}_<k>{self.seg_map_suffix} next to it)'))
                continue
            paths = [osp.join(seg_dir, name) for name in labels[img_id]]
            data_list.append(
                dict(img_path=img_path,
                     seg_map_path=paths[0] if len(paths) == 1 else paths,
                     img_id=img_id,
                     seg_fields=[]))
        return data_list
