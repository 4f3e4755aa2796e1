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
    with pytest.raises(ValueError, match=r'expected an H x W x 3 array, got shape \(64, 96, 4\)'):
        infer(model, np.zeros((64, 96, 4), np.uint8))  # RGBA
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


def test_rgb_array_with_channel_order_rgb_equals_the_file(models):
    """inference_superpixel(channel_order='rgb') flips an RGB array to the BGR the pipeline
    reads from files: its superpixels equal the file's (the array as BGR gives others)."""
    from clustseg.datasets import read_image
    model, _ = models['superpixel']
    bgr = read_image(IMG)
    ref = inference_superpixel(model, IMG, 20)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    np.testing.assert_array_equal(inference_superpixel(model, rgb, 20, channel_order='rgb'), ref)
    np.testing.assert_array_equal(inference_superpixel(model, bgr, 20), ref)
    assert not np.array_equal(inference_superpixel(model, rgb, 20), ref)


def test_checkpoint_dataset_meta_names_the_classes(tmp_path):
    """init_model with a checkpoint takes the classes and palette the Runner saved in its meta
    (``dataset_meta``): the demos draw those, not the config's."""
    from clustseg.apis.inference import segmentor_dataset_meta
    config = str(ROOT / 'configs/semantic/clustseg_compact_embedded.py')
    model = init_model(config)
    n = model.decode_head.num_classes
    meta = dict(classes=tuple(f'c{i}' for i in range(n)), palette=[[i, i, i] for i in range(n)])
    path = tmp_path / 'semantic.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(dataset_meta=meta)), path)
    loaded = init_model(config, str(path))
    assert loaded.dataset_meta == meta
    assert segmentor_dataset_meta(loaded) == meta


def test_last_assignment_map_is_the_superpixel_models_hard_labels(models, monkeypatch):
    """inference_assignments' last full-resolution map is each pixel's most probable center:
    the labels the superpixel model gives before its connectivity step."""
    from clustseg.apis import inference_assignments
    from clustseg.models.segmentors import superpixel_segmentor
    model, _ = models['superpixel']
    maps = inference_assignments(model, IMG, num_superpixels=20)
    assert maps[-1]['stage'] == 'full' and maps[-1]['num_clusters'] == 20
    monkeypatch.setattr(superpixel_segmentor, 'enforce_connectivity', lambda labels, _: labels)
    np.testing.assert_array_equal(maps[-1]['labels'], inference_superpixel(model, IMG, 20))


def test_map_of_the_padded_input_to_the_image_grid():
    """_to_image_grid: each map pixel covers its s x s input window; the padding and what the
    conv's ceil adds are cropped, then the image is resized (nearest) to its original size."""
    from clustseg.apis.inference import _to_image_grid
    labels = torch.arange(6).view(2, 3)
    full = labels.repeat_interleave(4, 0).repeat_interleave(4, 1).numpy()  # 8 x 12
    out = _to_image_grid(labels, (7, 11), (7, 11), (7, 11))  # ceil(7 / 4) = 2: stride 4
    np.testing.assert_array_equal(out, full[:7, :11])
    out = _to_image_grid(labels, (8, 12), (5, 6), (10, 12))  # padded, resized by the pipeline
    np.testing.assert_array_equal(out, full[:5, :6].repeat(2, 0).repeat(2, 1))


def test_class_names_of_a_checkpoint_without_them_come_from_the_config():
    """The demos' class names and palette: the checkpoint's ``dataset_meta`` only when it holds
    them (the segmentor's needs both), else the config's test dataset, with its ``metainfo``
    overriding the dataset class's."""
    from clustseg.apis.inference import detector_dataset_meta, segmentor_dataset_meta
    model = init_model(str(ROOT / 'configs/semantic/clustseg_compact_embedded.py'))
    n = model.decode_head.num_classes
    names, palette = tuple(f'c{i}' for i in range(n)), [[i, 0, 0] for i in range(n)]
    model.cfg.test_dataloader.dataset.metainfo = dict(classes=names, palette=palette)
    model.dataset_meta = dict(classes=tuple(f'x{i}' for i in range(n)))  # no palette
    meta = segmentor_dataset_meta(model)
    assert tuple(meta['classes']) == names and [list(p) for p in meta['palette']] == palette
    detector = init_model(str(ROOT / 'configs/panoptic/clustseg_compact_embedded.py'))
    expected = detector_dataset_meta(detector)['classes']
    detector.dataset_meta = dict(classes=())
    assert detector_dataset_meta(detector)['classes'] == expected
