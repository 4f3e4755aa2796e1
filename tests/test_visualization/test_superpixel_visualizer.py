"""SuperpixelVisualizer on synthetic samples (and through mmseg's SegVisualizationHook)."""
import uuid

import mmcv
import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.engine.hooks import SegVisualizationHook
from mmseg.registry import VISUALIZERS
from mmseg.structures import SegDataSample

from clustseg.visualization import SuperpixelVisualizer, mean_colour_image, superpixel_boundaries

H, W = 24, 32
YELLOW = (255, 255, 0)


def _name():
    return f'vis_{uuid.uuid4().hex}'


def _image():
    return np.random.RandomState(0).randint(0, 200, (H, W, 3)).astype(np.uint8)


def _sample(with_gt=True):
    ys, xs = np.mgrid[:H, :W]
    pred = (ys // 8) * 4 + xs // 8  # 3 x 4 grid of 8 x 8 blocks
    sample = SegDataSample()
    sample.pred_superpixels = PixelData(data=torch.from_numpy(pred)[None])
    if with_gt:
        gt = (xs >= W // 2).astype(np.int64)  # left / right halves
        sample.gt_sem_seg = PixelData(data=torch.from_numpy(gt)[None])
    return sample, pred


def test_boundaries_of_two_regions():
    labels = np.zeros((4, 6), np.int64)
    labels[:, 3:] = 1
    mask = superpixel_boundaries(labels)
    expected = np.zeros((4, 6), bool)
    expected[:, 2] = True
    np.testing.assert_array_equal(mask, expected)
    assert not superpixel_boundaries(np.zeros((5, 5), np.int64)).any()


def test_labels_resized_nearest_before_drawing():
    """Labels of another size are resized as the training transforms resize them
    (``resize_labels_nearest``, cv2's nearest rule) before their boundaries are drawn."""
    vis = SuperpixelVisualizer(name=_name())
    labels = np.array([[0, 1], [2, 3]])
    image = _image()[:4, :4]
    np.testing.assert_array_equal(vis.draw_superpixels(image, labels),
                                  vis.draw_superpixels(image, np.repeat(np.repeat(labels, 2, 0),
                                                                        2, 1)))


def test_mean_colour_image():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = 10
    image[0, 1] = 20
    labels = np.array([[0, 0], [1, 1]])
    out = mean_colour_image(image, labels)
    assert (out[0] == 15).all() and (out[1] == 0).all()


def test_pred_and_gt_panels(tmp_path):
    vis = SuperpixelVisualizer(name=_name(), boundary_color=YELLOW)
    image = _image()
    sample, pred = _sample()
    out_file = tmp_path / 'out.png'
    drawn = vis.add_datasample('sample', image, sample, out_file=str(out_file))
    assert drawn.shape == (H, 2 * W, 3)
    gt_panel, pred_panel = drawn[:, :W], drawn[:, W:]

    pred_mask = superpixel_boundaries(pred)
    assert pred_mask.sum() > 0
    assert (pred_panel[pred_mask] == YELLOW).all()
    np.testing.assert_array_equal(pred_panel[~pred_mask], image[~pred_mask])
    gt_mask = np.zeros((H, W), bool)
    gt_mask[:, W // 2 - 1] = True
    assert (gt_panel[gt_mask] == YELLOW).all()
    np.testing.assert_array_equal(gt_panel[~gt_mask], image[~gt_mask])

    # written as a normal BGR image file
    np.testing.assert_array_equal(mmcv.imread(str(out_file), channel_order='rgb'), drawn)

    only_pred = vis.add_datasample('sample', image, sample, draw_gt=False,
                                   out_file=str(tmp_path / 'pred.png'))
    np.testing.assert_array_equal(only_pred, pred_panel)


def test_mean_colour_fill_and_alpha():
    vis = SuperpixelVisualizer(name=_name(), fill_mean_color=True, alpha=0.5,
                               boundary_color=(0, 0, 255))
    image = _image()
    sample, pred = _sample(with_gt=False)
    drawn = vis.add_datasample('x', image, sample, draw_gt=True)
    assert drawn.shape == (H, W, 3)
    mask = superpixel_boundaries(pred)
    filled = mean_colour_image(image, pred)
    np.testing.assert_array_equal(drawn[~mask], filled[~mask])
    expected = np.round(0.5 * filled[mask] + 0.5 * np.array([0, 0, 255])).astype(np.uint8)
    np.testing.assert_array_equal(drawn[mask], expected)


def test_labels_resized_to_image_and_vis_backend(tmp_path):
    # in the superpixel configs' scope: an earlier test's init_model may have left mmdet's
    # as the process's default scope (as mmdet's and mmseg's init functions do)
    with DefaultScope.overwrite_default_scope('mmseg'):
        vis = VISUALIZERS.build(
            dict(type='SuperpixelVisualizer', name=_name(), save_dir=str(tmp_path),
                 vis_backends=[dict(type='LocalVisBackend')]))
    assert isinstance(vis, SuperpixelVisualizer)
    image = np.zeros((2 * H, 2 * W, 3), np.uint8)  # predictions at half resolution
    sample, _ = _sample(with_gt=False)
    drawn = vis.add_datasample('big', image, sample, step=3)
    assert drawn.shape == image.shape
    assert (tmp_path / 'vis_data' / 'vis_image' / 'big_3.png').is_file()


def test_invalid_inputs():
    with pytest.raises(ValueError, match='boundary_color'):
        SuperpixelVisualizer(name=_name(), boundary_color=(0, 300, 0))
    with pytest.raises(ValueError, match='alpha'):
        SuperpixelVisualizer(name=_name(), alpha=2.0)
    vis = SuperpixelVisualizer(name=_name())
    with pytest.raises(ValueError, match='H x W x 3'):
        vis.add_datasample('bad', np.zeros((4, 4, 4), np.uint8), None)
    sample = SegDataSample()
    sample.pred_superpixels = PixelData(data=torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='1 x H x W'):
        vis.add_datasample('bad', np.zeros((4, 4, 3), np.uint8), sample)


def test_mmseg_visualization_hook_writes_one_png_per_image(tmp_path):
    """The path taken by ``tools/test.py --show-dir``: mmseg's hook with our visualizer."""
    show_dir = tmp_path / 'show'
    SuperpixelVisualizer.get_instance(
        _name(), vis_backends=[dict(type='LocalVisBackend', save_dir=str(show_dir),
                                    img_save_dir='.')])
    hook = SegVisualizationHook(draw=True, interval=1)
    outputs = []
    for i in range(3):
        path = tmp_path / f'img_{i}.jpg'
        mmcv.imwrite(_image()[..., ::-1], str(path))
        sample, _ = _sample()
        sample.set_metainfo(dict(img_path=str(path)))
        outputs.append(sample)

    class FakeRunner:
        iter = 0

    hook.after_test_iter(FakeRunner(), 0, {}, outputs[:2])
    hook.after_test_iter(FakeRunner(), 1, {}, outputs[2:])
    written = sorted(p.name for p in show_dir.iterdir())
    assert written == [f'test_img_{i}.jpg_0.png' for i in range(3)]
    assert mmcv.imread(str(show_dir / written[0])).shape == (H, 2 * W, 3)


def test_boundaries_between_rows_and_rounded_mean_colours():
    """A boundary between an upper and a lower region is drawn on the upper row; a region's
    mean colour is rounded (15.5 -> 16), not truncated."""
    labels = np.zeros((4, 3), np.int64)
    labels[2:] = 1
    expected = np.zeros((4, 3), bool)
    expected[1] = True
    np.testing.assert_array_equal(superpixel_boundaries(labels), expected)
    image = np.zeros((1, 2, 3), np.uint8)
    image[0, 0], image[0, 1] = 10, 21
    assert (mean_colour_image(image, np.zeros((1, 2), np.int64)) == 16).all()


def test_pred_superpixels_drawn_before_pred_sem_seg():
    """A sample with both: the superpixels are drawn (pred_sem_seg is the fallback)."""
    vis = SuperpixelVisualizer(name=_name())
    sample, pred = _sample(with_gt=False)
    sample.pred_sem_seg = PixelData(data=torch.zeros(1, H, W, dtype=torch.int64))
    drawn = vis.add_datasample('x', _image(), sample, out_file=None)
    np.testing.assert_array_equal(drawn, vis.draw_superpixels(_image(), pred))
