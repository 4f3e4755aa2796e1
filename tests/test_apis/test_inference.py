"""clustseg.apis inference helpers: models of mmdet and mmseg in one process, and arrays
whose scale cannot be known refused by every task's helper."""
import numpy as np
import pytest
import torch

from clustseg.apis import inference_superpixel, init_model
from clustseg.apis.inference import inference_detector, inference_segmentor

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
IMG = str(ROOT / 'tests' / 'data' / 'bad' / 'images' / 'jpg' / 'good.jpg')  # 64 x 96


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return dict(
        detector=(init_model(str(ROOT / 'configs/panoptic/clustseg_compact_embedded.py')),
                  inference_detector),
        segmentor=(init_model(str(ROOT / 'configs/semantic/clustseg_compact_embedded.py')),
                   inference_segmentor),
        superpixel=(init_model(str(ROOT / 'configs/superpixel/clustseg_compact_embedded.py')),
                    lambda m, img, **kw: inference_superpixel(m, img, 20, **kw)))


def test_models_of_both_libraries_in_one_process(models):
    """init_model sets one process-wide registry scope: each helper builds its pipeline in
    its own model's scope (the detector's failed after a segmentor was loaded, and back)."""
    first = {k: infer(model, IMG) for k, (model, infer) in models.items()}
    init_model(str(ROOT / 'configs/semantic/clustseg_compact_embedded.py'))  # mmseg last
    model, infer = models['detector']
    again = infer(model, IMG).pred_panoptic_seg.sem_seg
    assert torch.equal(again, first['detector'].pred_panoptic_seg.sem_seg)
    init_model(str(ROOT / 'configs/panoptic/clustseg_compact_embedded.py'))  # mmdet last
    model, infer = models['segmentor']
    assert torch.equal(infer(model, IMG).pred_sem_seg.data, first['segmentor'].pred_sem_seg.data)
    model, infer = models['superpixel']
    np.testing.assert_array_equal(infer(model, IMG), first['superpixel'])


@pytest.mark.parametrize('task', ['detector', 'segmentor', 'superpixel'])
def test_arrays_of_unknown_scale_are_refused(models, task):
    model, infer = models[task]
    img = np.zeros((64, 96, 3), np.uint8)
    with pytest.raises(TypeError, match=r'^x\.png: expected a uint8 image .*got float32 '
                       r'\(values in \[0, 1\]\?'):
        infer(model, img.astype(np.float32) / 255, img_path='x.png')
    with pytest.raises(TypeError, match=r'^the input array: expected a uint8 image .*uint16'):
        infer(model, img.astype(np.uint16))
    with pytest.raises(ValueError, match=r'expected an H x W x 3 array, got shape \(64, 96\)'):
        infer(model, img[..., 0])
    with pytest.raises(TypeError, match='file path or an H x W x 3 BGR uint8 array, got list'):
        infer(model, [img])
    infer(model, ROOT / 'tests' / 'data' / 'bad' / 'images' / 'jpg' / 'good.jpg')  # a Path


def test_image_too_small_for_the_centers_is_named():
    """The instance model's 100 top-K centers need 100 pixels of its feature map: a thin image
    is an error naming it and its size (the model's message named only the feature map)."""
    model = init_model(str(ROOT / 'configs/instance/clustseg_compact_embedded.py'))
    with pytest.raises(ValueError, match=r'^thin\.png \(20 x 640\): num_queries K=100 is '
                       r'larger than the number of pixels'):
        inference_detector(model, np.zeros((20, 640, 3), np.uint8), img_path='thin.png')
