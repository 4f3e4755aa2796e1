"""mmseg's semantic datasets (ADE20K, COCO-Stuff) with checked label maps and ``skip_bad``."""
import os.path as osp
from typing import List

from mmseg.datasets import ADE20KDataset, COCOStuffDataset

from clustseg.registry import DATASETS
from .coco_checks import is_local_path
from .image_io import MissingInputError
from .skip_bad import SkipBadSamplesMixin


class SemanticChecksMixin:
    """Load-time checks of an mmseg ``BaseSegDataset``, and what the checked label loader
    needs.

    List it after :class:`SkipBadSamplesMixin` and before the mmseg dataset class. Every
    ``data_info`` gets ``num_classes`` (``len(metainfo['classes'])``) and ``ignore_index``,
    so that :class:`~clustseg.datasets.transforms.LoadSemanticAnnotationsChecked` refuses
    class ids outside the classes; a local label map that does not exist is a
    :class:`~clustseg.datasets.MissingInputError` naming it (with ``skip_bad``: a warning, and
    the sample is dropped and counted).
    """

    def load_data_list(self) -> List[dict]:
        num_classes = len(self._metainfo.get('classes') or ())
        data_list = []
        for info in super().load_data_list():
            seg = info.get('seg_map_path')
            if seg is not None and is_local_path(seg, self.backend_args) and \
                    not osp.isfile(seg):
                self.bad_input(MissingInputError(
                    seg, f'label map not found (image {info.get("img_path")})'))
                continue
            info['num_classes'] = num_classes
            info['ignore_index'] = self.ignore_index
            data_list.append(info)
        return data_list


@DATASETS.register_module()
class ClustSegADE20KDataset(SkipBadSamplesMixin, SemanticChecksMixin, ADE20KDataset):
    """mmseg's ``ADE20KDataset`` (150 classes, ``reduce_zero_label=True``) with checked
    samples: see :class:`SemanticChecksMixin` and
    :class:`~clustseg.datasets.transforms.LoadSemanticAnnotationsChecked`.

    Args:
        skip_bad (bool): warn about, drop and count bad samples instead (see
            :class:`~clustseg.datasets.SkipBadSamplesMixin`). Defaults to False.
        **kwargs: those of mmseg's ``ADE20KDataset``.
    """


@DATASETS.register_module()
class ClustSegCOCOStuffDataset(SkipBadSamplesMixin, SemanticChecksMixin, COCOStuffDataset):
    """mmseg's ``COCOStuffDataset`` (171 classes, ``*_labelTrainIds.png``) with checked
    samples: see :class:`SemanticChecksMixin` and
    :class:`~clustseg.datasets.transforms.LoadSemanticAnnotationsChecked`.

    Args:
        skip_bad (bool): as for :class:`ClustSegADE20KDataset`.
        **kwargs: those of mmseg's ``COCOStuffDataset``.
    """
