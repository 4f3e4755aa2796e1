"""Data preprocessors that refuse test images too large to predict at their original size.

Every ClustSeg model returns its prediction at the original image size: the panoptic /
instance heads upsample K mask maps, the semantic head C class maps, the superpixel model
runs its final E/M there. That needs memory in proportion to the image's pixels (about 0.5 KB
per pixel for the panoptic model: an 8000 x 6000 photo asks for 25-29 GB). The preprocessors
below check each sample's ``ori_shape`` before anything runs, in evaluation and inference
(``training=False``; training images are cropped by their pipelines), and raise
:class:`ImageTooLargeError` naming the image and the limit
(``model.data_preprocessor.max_test_pixels``).
"""
from typing import Optional, Sequence

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmseg.models.data_preprocessor import SegDataPreProcessor

from clustseg.registry import MODELS

#: Default ``max_test_pixels``: 4096 x 4096 pixels (16.8 M), e.g. 8 GB of float mask maps for
#: 128 clusters. Larger images: resize them first, or raise the limit where memory allows.
DEFAULT_MAX_TEST_PIXELS = 4096 * 4096


class ImageTooLargeError(ValueError):
    """A test image with more pixels than ``max_test_pixels``; the message names it."""


def check_test_image_size(data_samples: Optional[Sequence], max_pixels: Optional[int],
                          key: str = 'model.data_preprocessor.max_test_pixels') -> None:
    """Raise :class:`ImageTooLargeError` for the first sample whose ``ori_shape`` (else
    ``img_shape``) has more than ``max_pixels`` pixels (None: no limit)."""
    if max_pixels is None or not data_samples:
        return
    for sample in data_samples:
        meta = getattr(sample, 'metainfo', None) or {}
        shape = meta.get('ori_shape', meta.get('img_shape'))
        if shape is None:
            continue
        h, w = (int(v) for v in shape[:2])
        if h * w > max_pixels:
            name = meta.get('img_path') or 'the input image'
            raise ImageTooLargeError(
                f'{name}: {h} x {w} (H x W) = {h * w} pixels is more than the limit of '
                f'{max_pixels} pixels for a test image ({key}): the prediction at the original '
                'size would need too much memory. Resize the image, or raise the limit where '
                f'memory allows (tools/test.py: --cfg-options {key}=N, None for no limit; '
                "clustseg.apis.init_model: cfg_options={'" + key + "': N})")


class MaxTestPixelsMixin:
    """Adds ``max_test_pixels`` to an mmengine data preprocessor (list it first).

    Args:
        max_test_pixels (int | None): the most pixels (``H x W`` of the original image) a
            sample may have in evaluation / inference; None: no limit. Defaults to
            :data:`DEFAULT_MAX_TEST_PIXELS`.
    """

    def __init__(self, *args, max_test_pixels: Optional[int] = DEFAULT_MAX_TEST_PIXELS,
                 **kwargs) -> None:
        if max_test_pixels is not None and (isinstance(max_test_pixels, bool) or
                                            not isinstance(max_test_pixels, int) or
                                            max_test_pixels < 1):
            raise ValueError('model.data_preprocessor.max_test_pixels must be a positive int '
                             f'or None, got {max_test_pixels!r}')
        super().__init__(*args, **kwargs)
        self.max_test_pixels = max_test_pixels

    def forward(self, data: dict, training: bool = False) -> dict:
        if not training:
            check_test_image_size(data.get('data_samples'), self.max_test_pixels)
        return super().forward(data, training)


@MODELS.register_module()
class ClustSegDetDataPreprocessor(MaxTestPixelsMixin, DetDataPreprocessor):
    """mmdet's ``DetDataPreprocessor`` with ``max_test_pixels`` (see :class:`MaxTestPixelsMixin`)."""


@MODELS.register_module()
class ClustSegSegDataPreProcessor(MaxTestPixelsMixin, SegDataPreProcessor):
    """mmseg's ``SegDataPreProcessor`` with ``max_test_pixels`` (see :class:`MaxTestPixelsMixin`).

    mmseg stacks test images without padding, so a test batch of images of different sizes
    (BSDS500's portrait and landscape images with ``test_dataloader.batch_size`` > 1) is a
    ``ValueError`` naming them and the key to set, instead of mmseg's bare assertion.
    """

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data.get('inputs')
        if not training and isinstance(inputs, (list, tuple)):  # a stacked tensor: one size
            sizes = [tuple(x.shape[1:]) for x in inputs]
            if len(set(sizes)) > 1:
                samples = data.get('data_samples') or [None] * len(sizes)
                names = [(getattr(s, 'metainfo', None) or {}).get('img_path', f'image {i}')
                         for i, s in enumerate(samples)]
                listed = ', '.join(f'{n} ({h} x {w})' for n, (h, w) in zip(names, sizes))
                raise ValueError(
                    f'a test batch holds images of different sizes: {listed}. Test images '
                    'are predicted at their own size, one size per batch: set '
                    'test_dataloader.batch_size=1 (val_dataloader too)')
        return super().forward(data, training)
