"""Test images too large to predict at their original size are refused before anything runs,
with an error naming the image and the limit (``model.data_preprocessor.max_test_pixels``);
tested with a tiny limit instead of a huge image."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from clustseg.apis import inference_superpixel, init_model
from clustseg.apis.inference import inference_detector, inference_segmentor
from clustseg.models.data_preprocessors import (DEFAULT_MAX_TEST_PIXELS,
                                                ClustSegDetDataPreprocessor,
                                                ClustSegSegDataPreProcessor, ImageTooLargeError)

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
IMG = str(ROOT / 'tests' / 'data' / 'bad' / 'images' / 'jpg' / 'good.jpg')  # 64 x 96
CONFIGS = {
    'panoptic': ('configs/panoptic/clustseg_compact_embedded.py', inference_detector,
                 ClustSegDetDataPreprocessor),
    'semantic': ('configs/semantic/clustseg_compact_embedded.py', inference_segmentor,
                 ClustSegSegDataPreProcessor),
    'superpixel': ('configs/superpixel/clustseg_compact_embedded.py', inference_superpixel,
                   ClustSegSegDataPreProcessor),
}


@pytest.mark.parametrize('task', sorted(CONFIGS))
def test_image_above_the_limit_is_refused_naming_it(task):
    config, infer, cls = CONFIGS[task]
    model = init_model(str(ROOT / config),
                       cfg_options={'model.data_preprocessor.max_test_pixels': 64 * 96 - 1})
    assert type(model.data_preprocessor) is cls
    with pytest.raises(ImageTooLargeError) as info:
        infer(model, IMG)
    msg = str(info.value)
    assert msg.startswith(f'{IMG}: 64 x 96 (H x W) = 6144 pixels is more than the limit of 6143 '
                          'pixels for a test image (model.data_preprocessor.max_test_pixels)')
    # an array is named by img_path when given
    img = np.zeros((64, 96, 3), np.uint8)
    with pytest.raises(ImageTooLargeError, match='^the input image: 64 x 96'):
        infer(model, img)
    # at the limit it runs
    model.data_preprocessor.max_test_pixels = 64 * 96
    infer(model, IMG, **({'num_superpixels': 20} if task == 'superpixel' else {}))


def test_default_limit_and_training():
    cfg = Config.fromfile(str(ROOT / CONFIGS['semantic'][0]))
    pre = ClustSegSegDataPreProcessor(**{k: v for k, v in cfg.model.data_preprocessor.items()
                                         if k != 'type'})
    assert pre.max_test_pixels == DEFAULT_MAX_TEST_PIXELS == 4096 * 4096
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(ori_shape=(5000, 4000), img_shape=(8, 8),
                                         img_path='big.jpg'))
    data = dict(inputs=[torch.zeros(3, 8, 8, dtype=torch.uint8)], data_samples=[sample])
    with pytest.raises(ImageTooLargeError, match=r'^big\.jpg: 5000 x 4000 .* limit of 16777216'):
        pre(data, False)
    pre(data, True)  # training crops: no limit
    with pytest.raises(ValueError, match='max_test_pixels must be a positive int or None'):
        ClustSegSegDataPreProcessor(max_test_pixels=0)
    ClustSegSegDataPreProcessor(max_test_pixels=None)(data, False)


def test_mixed_test_sizes_are_named():
    """A test batch of a portrait and a landscape image: an error naming both and the key
    (mmseg's own was a bare assertion); training batches are padded as before."""
    cfg = Config.fromfile(str(ROOT / CONFIGS['superpixel'][0]))
    pre = ClustSegSegDataPreProcessor(**{k: v for k, v in cfg.model.data_preprocessor.items()
                                         if k != 'type'})
    from mmseg.structures import SegDataSample
    shapes = ((8, 12), (12, 8))
    samples = [SegDataSample(metainfo=dict(ori_shape=s, img_shape=s, img_path=f'{n}.jpg'))
               for n, s in zip(('land', 'portrait'), shapes)]
    data = dict(inputs=[torch.zeros(3, *s, dtype=torch.uint8) for s in shapes],
                data_samples=samples)
    with pytest.raises(ValueError, match=r'different sizes: land\.jpg \(8 x 12\), portrait\.jpg '
                       r'\(12 x 8\).*test_dataloader\.batch_size=1'):
        pre(data, False)
    assert pre(data, True)['inputs'].shape[-2:] == (12, 12)
