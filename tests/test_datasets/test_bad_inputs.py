"""The bad-input corpus (tests/data/bad): checked image reading, annotation errors naming the
file, and ``skip_bad`` (warn, drop, count) in the datasets and the metric."""
import os.path as osp
import pickle
import random
import re
import shutil

import cv2
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile

from clustseg.datasets import (BadInputError, BSDS500Dataset, MissingInputError,
                               SuperpixelFolderDataset, read_image)
from clustseg.datasets.skip_bad import loading_transforms
from clustseg.datasets.transforms import (LoadImageChecked, LoadSuperpixelAnnotations,
                                          PackSuperpixelInputs, load_segmentations)
from clustseg.evaluation import SuperpixelMetric

# What each corpus image must give: a shape (read fine) or a regex of the error reason.
IMAGES = {
    'jpg/good.jpg': (64, 96, 3),
    'jpg/gray.jpg': (64, 96, 3),
    'jpg/tiny.jpg': (8, 8, 3),
    'jpg/truncated.jpg': 'truncated JPEG',
    'jpg/empty.jpg': r'empty file \(0 bytes\)',
    'jpg/text.jpg': 'not an image file',
    'png/rgba.png': (64, 96, 3),
    'png/deep16.png': (64, 96, 3),
    'png/gray.png': (64, 96, 3),
    'png/truncated.png': 'truncated PNG',
}
# Bad samples of each layout: file named by the error -> regex of the reason.
BSDS_JPG_BAD = {
    'images/jpg/truncated.jpg': 'truncated JPEG',
    'images/jpg/empty.jpg': 'empty file',
    'images/jpg/text.jpg': 'not an image file',
    'groundTruth/jpg/annsize.mat': r'annotation is \(60, 80\).*annsize\.jpg is \(64, 96\)',
    'groundTruth/jpg/noann.mat': 'BSDS500 annotation not found',
    'groundTruth/jpg/nogt.mat': "no 'groundTruth' variable",
    'groundTruth/jpg/noseg.mat': "no 'Segmentation' field",
}
BSDS_JPG_GOOD = ['good', 'gray', 'labeltrunc', 'tiny']
FOLDER_JPG_BAD = {
    'images/jpg/truncated.jpg': 'truncated JPEG',
    'images/jpg/empty.jpg': 'empty file',
    'images/jpg/text.jpg': 'not an image file',
    'labels/jpg/annsize.png': r'annotation is \(60, 80\)',
    'labels/jpg/noann.png': 'no label map for image',
    'labels/jpg/labeltrunc.png': 'truncated PNG',
}
FOLDER_JPG_GOOD = ['good', 'gray', 'nogt', 'noseg', 'tiny']


@pytest.fixture(scope='module')
def bad_root(repo_root):
    return str(repo_root / 'tests' / 'data' / 'bad')


def _pipeline(pack=False):
    steps = [LoadImageChecked(), LoadSuperpixelAnnotations(annotator='first', with_all=True)]
    return steps + [PackSuperpixelInputs()] if pack else steps


def _bsds(root, split='jpg', **kwargs):
    return BSDS500Dataset(
        data_root=root, data_prefix=dict(img_path=f'images/{split}',
                                         seg_map_path=f'groundTruth/{split}'),
        img_suffix='.' + split, test_mode=True, pipeline=_pipeline(), **kwargs)


def _folder(root, split='jpg', **kwargs):
    return SuperpixelFolderDataset(
        data_root=root, data_prefix=dict(img_path=f'images/{split}',
                                         seg_map_path=f'labels/{split}'),
        img_suffix='.' + split, test_mode=True, pipeline=_pipeline(), **kwargs)



def test_corpus_is_small(bad_root):
    import os
    total = sum(osp.getsize(osp.join(d, f)) for d, _, fs in os.walk(bad_root) for f in fs)
    assert total < 1 << 20


@pytest.mark.parametrize('name', sorted(IMAGES))
def test_read_image_corpus(bad_root, name):
    path = osp.join(bad_root, 'images', name)
    expected = IMAGES[name]
    if isinstance(expected, tuple):
        img = read_image(path)
        assert img.shape == expected and img.dtype == np.uint8
        return
    with pytest.raises(BadInputError) as info:
        read_image(path)
    assert info.value.path == path and path in str(info.value)
    assert isinstance(info.value, ValueError)
    assert re.search(expected, info.value.reason), info.value.reason


def test_conversions_are_consistent(bad_root):
    img = lambda n: read_image(osp.join(bad_root, 'images', n))  # noqa: E731
    rgba, deep, gray = img('png/rgba.png'), img('png/deep16.png'), img('png/gray.png')
    # alpha dropped, 16 bit scaled (v >> 8): the same pixels as the RGBA file's colour
    np.testing.assert_array_equal(deep, rgba)
    assert len(np.unique(rgba)) > 50
    raw = cv2.imread(osp.join(bad_root, 'images', 'png/deep16.png'), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.max() > 255
    # grayscale: three equal channels, the source gray levels
    for g in (gray, img('jpg/gray.jpg')):
        assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    np.testing.assert_array_equal(gray[..., 0], cv2.cvtColor(rgba, cv2.COLOR_BGR2GRAY))
    np.testing.assert_array_equal(img('png/rgba.png')[..., ::-1],
                                  read_image(osp.join(bad_root, 'images', 'png/rgba.png'),
                                             channel_order='rgb'))


def test_truncated_jpeg_is_not_read_silently(bad_root, tmp_path):
    path = osp.join(bad_root, 'images', 'jpg', 'truncated.jpg')
    # the hazard: OpenCV decodes it into a partly grey image without any error
    silent = cv2.imread(path, cv2.IMREAD_COLOR)
    assert silent is not None and silent.shape == (64, 96, 3)
    with pytest.raises(BadInputError, match='truncated.jpg: truncated JPEG'):
        read_image(path)
    # every cut of a good JPEG is refused; a complete one with trailing bytes is fine
    data = open(osp.join(bad_root, 'images', 'jpg', 'good.jpg'), 'rb').read()
    for cut in range(1, len(data) - 1, max(1, len(data) // 40)):
        (tmp_path / 'cut.jpg').write_bytes(data[:cut])
        with pytest.raises(BadInputError, match='cut.jpg'):
            read_image(str(tmp_path / 'cut.jpg'))
    (tmp_path / 'cut.jpg').write_bytes(data[:-1])
    with pytest.raises(BadInputError, match='no end-of-image marker'):
        read_image(str(tmp_path / 'cut.jpg'))
    (tmp_path / 'trailing.jpg').write_bytes(data + b'\x00' * 16)
    np.testing.assert_array_equal(read_image(str(tmp_path / 'trailing.jpg')),
                                  read_image(osp.join(bad_root, 'images', 'jpg', 'good.jpg')))


def test_corrupt_png_and_other_files(bad_root, tmp_path):
    data = bytearray(open(osp.join(bad_root, 'images', 'png', 'rgba.png'), 'rb').read())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the image data
    (tmp_path / 'flip.png').write_bytes(bytes(data))
    with pytest.raises(BadInputError, match='flip.png: corrupt PNG: CRC mismatch'):
        read_image(str(tmp_path / 'flip.png'))
    with pytest.raises(MissingInputError, match='nope.jpg') as info:
        read_image(str(tmp_path / 'nope.jpg'))
    assert isinstance(info.value, FileNotFoundError)
    again = pickle.loads(pickle.dumps(info.value))  # survives dataloader workers
    assert type(again) is MissingInputError and again.path == info.value.path
    with pytest.raises(BadInputError, match='is a directory'):
        read_image(str(tmp_path))
    # other formats OpenCV reads go through; a bad BMP is still named
    bmp = tmp_path / 'x.bmp'
    cv2.imwrite(str(bmp), np.full((5, 7, 3), 9, np.uint8))
    assert read_image(str(bmp)).shape == (5, 7, 3)
    bmp.write_bytes(b'BM' + b'\x00' * 10)
    with pytest.raises(BadInputError, match='x.bmp: OpenCV cannot decode this BMP'):
        read_image(str(bmp))


def test_load_image_checked_matches_mmcv(repo_root):
    path = str(repo_root / 'tests/data/bsds500/images/val/101085.jpg')
    ours = LoadImageChecked()(dict(img_path=path))
    theirs = LoadImageFromFile()(dict(img_path=path))
    np.testing.assert_array_equal(ours['img'], theirs['img'])
    assert ours['img_shape'] == theirs['img_shape'] == ours['ori_shape'] == (481, 321)
    as_float = LoadImageChecked(to_float32=True)(dict(img_path=path))['img']
    assert as_float.dtype == np.float32
    with pytest.raises(ValueError, match='channel_order'):
        LoadImageChecked(channel_order='hsv')
    with pytest.raises(KeyError, match='img_path'):
        LoadImageChecked()(dict())


def test_annotation_errors_name_the_file(bad_root):
    gt = osp.join(bad_root, 'groundTruth', 'jpg')
    img = osp.join(bad_root, 'images', 'jpg')
    load = LoadSuperpixelAnnotations(annotator='first')
    cases = {
        osp.join(gt, 'nogt.mat'): "no 'groundTruth' variable",
        osp.join(gt, 'noseg.mat'): "no 'Segmentation' field",
        osp.join(gt, 'noann.mat'): 'not found',
        osp.join(bad_root, 'labels', 'jpg', 'labeltrunc.png'): 'truncated PNG',
        osp.join(bad_root, 'labels', 'jpg', 'noann.png'): 'not found',
        osp.join(img, 'empty.jpg'): 'empty file',  # an empty "label image"
    }
    for path, reason in cases.items():
        with pytest.raises(BadInputError, match=reason) as info:
            load(dict(seg_map_path=path))
        assert info.value.path == path
    with pytest.raises(MissingInputError):
        load_segmentations(osp.join(gt, 'noann.mat'))
    # another size than its image: named, with the image
    res = LoadImageChecked()(dict(img_path=osp.join(img, 'annsize.jpg')))
    res['seg_map_path'] = osp.join(gt, 'annsize.mat')
    with pytest.raises(BadInputError, match=r'annsize\.mat: annotation is \(60, 80\)') as info:
        load(res)
    assert 'annsize.jpg' in str(info.value)


def _expect_errors(ds, root, bad):
    """Every sample of ``ds`` loads, or fails with the error naming the expected file."""
    failed = {}
    for i in range(len(ds)):
        try:
            ds[i]
        except BadInputError as err:
            failed[osp.relpath(err.path, root)] = err.reason
    assert sorted(failed) == sorted(bad)
    for name, reason in failed.items():
        assert re.search(bad[name], reason), (name, reason)


def test_bsds_without_skip_bad_errors_name_files(bad_root, tmp_path):
    # a missing annotation stops the dataset at once, naming the expected file
    with pytest.raises(MissingInputError, match=r'groundTruth/jpg/noann\.mat'):
        _bsds(bad_root)
    ids = tmp_path / 'ids.txt'
    ids.write_text('\n'.join(n for n in ('annsize', 'empty', 'gray', 'good', 'labeltrunc',
                                         'nogt', 'noseg', 'text', 'tiny', 'truncated')))
    ds = _bsds(bad_root, ann_file=str(ids))
    assert len(ds) == 10 and 'skipped' not in ds.metainfo
    _expect_errors(ds, bad_root, {k: v for k, v in BSDS_JPG_BAD.items() if 'noann' not in k})


def test_folder_without_skip_bad_errors_name_files(bad_root, tmp_path):
    with pytest.raises(MissingInputError, match=r'labels/jpg/noann\.png'):
        _folder(bad_root)
    ids = tmp_path / 'ids.txt'
    ids.write_text('\n'.join(['annsize', 'empty', 'labeltrunc', 'text', 'truncated'] +
                             FOLDER_JPG_GOOD))
    ds = _folder(bad_root, ann_file=str(ids))
    _expect_errors(ds, bad_root, {k: v for k, v in FOLDER_JPG_BAD.items() if 'noann' not in k})


@pytest.mark.parametrize('make,bad,good', [
    (_bsds, BSDS_JPG_BAD, BSDS_JPG_GOOD),
    (_folder, FOLDER_JPG_BAD, FOLDER_JPG_GOOD),
], ids=['bsds500', 'folder'])
def test_skip_bad_drops_warns_and_counts(bad_root, log_messages, make, bad, good):
    np.random.seed(3)
    random.seed(3)
    expected_draws = np.random.rand(), random.random()
    np.random.seed(3)
    random.seed(3)
    ds = make(bad_root, skip_bad=True)
    assert (np.random.rand(), random.random()) == expected_draws  # RNG state untouched
    assert sorted(ds.get_data_info(i)['img_id'] for i in range(len(ds))) == good
    assert all(ds.get_data_info(i)['seg_fields'] == [] for i in range(len(ds)))  # unchanged
    skipped = dict(ds.metainfo['skipped'])
    assert sorted(osp.relpath(p, bad_root) for p in skipped) == sorted(bad)
    for path, reason in skipped.items():
        assert re.search(bad[osp.relpath(path, bad_root)], reason)
        assert any(path in m and reason in m for m in log_messages), path
    for i in range(len(ds)):  # the kept ones load
        assert ds[i]['img'].shape[2] == 3


def test_skip_bad_png_split_and_tiny_image_path(bad_root, tmp_path):
    ds = _bsds(bad_root, 'png', skip_bad=True)
    assert [p for p, _ in ds.metainfo['skipped']] == [
        osp.join(bad_root, 'images', 'png', 'truncated.png')]
    assert len(ds) == 3
    # the 8 x 8 image is read, and its path reaches the packed sample's metainfo
    ids = tmp_path / 'ids.txt'
    ids.write_text('tiny\n')
    tiny = BSDS500Dataset(
        data_root=bad_root, data_prefix=dict(img_path='images/jpg',
                                             seg_map_path='groundTruth/jpg'),
        ann_file=str(ids), test_mode=True, pipeline=_pipeline(pack=True))
    out = tiny[0]
    assert tuple(out['inputs'].shape) == (3, 8, 8)
    assert out['data_samples'].img_path.endswith('tiny.jpg')
    assert tuple(out['data_samples'].gt_seg_maps.data.shape[1:]) == (8, 8)


def test_skip_bad_edge_cases(bad_root, tmp_path):
    with pytest.raises(TypeError, match='skip_bad must be a bool'):
        _bsds(bad_root, skip_bad='yes')
    for sub in ('images/jpg', 'groundTruth/jpg'):
        (tmp_path / sub).mkdir(parents=True)
    shutil.copy(osp.join(bad_root, 'images/jpg/text.jpg'), tmp_path / 'images/jpg')
    shutil.copy(osp.join(bad_root, 'groundTruth/jpg/text.mat'), tmp_path / 'groundTruth/jpg')
    with pytest.raises(ValueError, match=r'all 1 samples are bad.*text\.jpg'):
        _bsds(str(tmp_path), skip_bad=True)
    with pytest.raises(ValueError, match='needs a Load'):
        BSDS500Dataset(data_root=bad_root, data_prefix=dict(img_path='images/png',
                                                            seg_map_path='groundTruth/png'),
                       img_suffix='.png', skip_bad=True, pipeline=[PackSuperpixelInputs()])
    steps = [LoadImageChecked(), PackSuperpixelInputs(), LoadSuperpixelAnnotations(), object()]
    assert loading_transforms(steps) == steps[:3]


def test_metric_reports_skipped(bad_root, log_messages):
    metric = SuperpixelMetric()
    gt = np.repeat(np.arange(4), 4).reshape(1, 4, 4)
    sample = dict(pred_superpixels=dict(data=gt.copy()), gt_seg_maps=dict(data=gt))
    metric.dataset_meta = dict(skipped=[('a/b.jpg', 'truncated JPEG'), ('c.mat', 'x')])
    metric.process(None, [sample])
    metrics = metric.compute_metrics(metric.results)
    assert metrics['num_skipped'] == 2 and metrics['ASA'] == 1.0
    table = [m for m in log_messages if 'Superpixel evaluation' in m][-1]
    assert 'skipped' in table.splitlines()[1] and '2 bad input(s) skipped' in table
    assert 'a/b.jpg: truncated JPEG' in table
    metric = SuperpixelMetric()
    metric.dataset_meta = dict(dataset_name='x')
    metric.process(None, [sample])
    assert 'num_skipped' not in metric.compute_metrics(metric.results)


class _RecordingModel:
    """Stands in for a segmentor in ``inference_superpixel``: records the packed samples."""

    def __init__(self, load_type):
        from mmengine.config import Config
        self.cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[
            dict(type=load_type), dict(type='LoadSuperpixelAnnotations'),
            dict(type='PackSuperpixelInputs')]))))
        self.samples = None

    def data_preprocessor(self, data, training):
        self.samples = data['data_samples']
        return dict(inputs=data['inputs'])

    def superpixels(self, inputs, num_superpixels=None):
        return [np.zeros(tuple(x.shape[-2:]), np.int64) for x in inputs]


@pytest.mark.parametrize('load_type', ['LoadImageFromFile', 'LoadImageChecked'])
def test_inference_reads_like_the_dataset(bad_root, load_type):
    from clustseg.apis import inference_superpixel
    model = _RecordingModel(load_type)
    tiny = osp.join(bad_root, 'images', 'jpg', 'tiny.jpg')
    assert inference_superpixel(model, tiny).shape == (8, 8)
    assert model.samples[0].img_path == tiny
    # an array keeps its file name for messages
    inference_superpixel(model, read_image(tiny), img_path=tiny)
    assert model.samples[0].img_path == tiny
    # a config's mmcv LoadImageFromFile is read checked as well
    for name in ('truncated.jpg', 'empty.jpg', 'text.jpg'):
        path = osp.join(bad_root, 'images', 'jpg', name)
        with pytest.raises(BadInputError, match=re.escape(path)):
            inference_superpixel(model, path)


def test_8x8_image_with_real_model_names_the_image_and_largest_k(bad_root, repo_root):
    from clustseg.apis import inference_superpixel, init_model
    from clustseg.models.segmentors import TooManySuperpixelsError
    model = init_model(str(repo_root / 'configs' / 'superpixel' /
                           'clustseg_compact_embedded.py'))
    tiny = osp.join(bad_root, 'images', 'jpg', 'tiny.jpg')
    with pytest.raises(TooManySuperpixelsError,
                       match=re.escape(tiny) + '.*largest K it allows is 1') as e:
        inference_superpixel(model, tiny, num_superpixels=600)
    assert e.value.max_k == 1
    assert inference_superpixel(model, tiny, num_superpixels=1).shape == (8, 8)
    with pytest.raises(ValueError, match='num_superpixels must be an integer >= 1'):
        inference_superpixel(model, tiny, num_superpixels=0)


def test_superpixel_api_input_convention(bad_root, repo_root):
    """inference_superpixel takes uint8 BGR (as read_image gives); RGB is converted when said
    so, float / other dtypes are refused instead of giving other superpixels silently."""
    from clustseg.apis import inference_superpixel, init_model
    model = init_model(str(repo_root / 'configs/superpixel/'
                           'clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py'),
                       str(repo_root / 'clustseg/weights/'
                           'clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.pth'))
    path = osp.join(bad_root, 'images', 'jpg', 'good.jpg')
    bgr = read_image(path)
    ref = inference_superpixel(model, path, num_superpixels=20)
    np.testing.assert_array_equal(inference_superpixel(model, bgr, num_superpixels=20), ref)
    rgb = np.ascontiguousarray(bgr[..., ::-1])
    np.testing.assert_array_equal(
        inference_superpixel(model, rgb, num_superpixels=20, channel_order='rgb'), ref)
    with pytest.raises(TypeError, match=r'expected a uint8 image .*got float64 \(values in '
                       r'\[0, 1\]\? pass \(img \* 255\)'):
        inference_superpixel(model, bgr / 255.0, num_superpixels=20)
    with pytest.raises(TypeError, match=r'^x\.png: expected a uint8 image .*got uint16'):
        inference_superpixel(model, bgr.astype(np.uint16), img_path='x.png')
    with pytest.raises(ValueError, match='channel_order'):
        inference_superpixel(model, bgr, channel_order='hsv')
    with pytest.raises(ValueError, match=r'H x W x 3 array, got shape \(64, 96\)'):
        inference_superpixel(model, bgr[..., 0])
