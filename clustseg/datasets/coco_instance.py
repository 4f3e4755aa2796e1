"""COCO instance segmentation dataset with checked annotations and ``skip_bad``."""
from mmdet.datasets import CocoDataset

from clustseg.registry import DATASETS
from .coco_checks import CocoAnnotationChecksMixin
from .skip_bad import SkipBadSamplesMixin


@DATASETS.register_module()
class ClustSegCocoDataset(SkipBadSamplesMixin, CocoAnnotationChecksMixin, CocoDataset):
    """mmdet's ``CocoDataset`` whose image entries are checked at load time.

    An image file that does not exist, or an annotation whose ``category_id`` is not among the
    JSON's ``categories`` (mmdet would drop it silently), raises a
    :class:`~clustseg.datasets.BadInputError` naming the file (the JSON and the image);
    truncated or non-image files are refused when read (``LoadImageChecked`` in the pipeline).
    Annotations of categories that are in the JSON but not in ``metainfo['classes']`` are
    still ignored, as in mmdet (class subsets); but every name of ``metainfo['classes']``
    must be a category of the JSON, in the JSON's order (mmdet's labels follow that order), or
    a ``ValueError`` names the JSON (:meth:`CocoAnnotationChecksMixin.check_classes`). An image without annotations is valid; in
    training ``filter_cfg=dict(filter_empty_gt=True)`` drops it, as in mmdet.

    Args:
        skip_bad (bool): warn about, drop and count bad samples instead (see
            :class:`~clustseg.datasets.SkipBadSamplesMixin`). Defaults to False.
        **kwargs: those of mmdet's ``CocoDataset``.
    """
