"""clustseg.superpixels: the one-call API with the packaged model, equal to
inference_superpixel on the committed BSDS500 images, and its input errors."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch

from clustseg.apis import inference_superpixel
from clustseg.apis.superpixel_api import clear_cache, load_superpixel_model, superpixels
from clustseg.datasets import BadInputError, MissingInputError, read_image
from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VAL = osp.join(ROOT, 'tests', 'data', 'bsds500', 'images', 'val')
LANDSCAPE = [osp.join(VAL, f'{i}.jpg') for i in ('103070', '105025')]  # 321 x 481
PORTRAIT = osp.join(VAL, '101085.jpg')  # 481 x 321


@pytest.fixture(scope='module')
def model():
    return load_superpixel_model('cpu')


@pytest.fixture(scope='module')
def refs(model):
    """inference_superpixel's labels (the reference API, BGR from the file) per (path, K)."""
    return {(p, k): inference_superpixel(model, p, num_superpixels=k)
            for p in LANDSCAPE + [PORTRAIT] for k in (200, 600)}


def _rgb(path):
    return np.ascontiguousarray(read_image(path)[..., ::-1])


def test_package_config_builds_the_repository_model():
    from mmengine.config import Config

    from clustseg.weights import SUPERPIXEL_CHECKPOINT, SUPERPIXEL_CONFIG
    repo = Config.fromfile(osp.join(
        ROOT, 'configs/superpixel/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py'))
    assert Config.fromfile(SUPERPIXEL_CONFIG).model.to_dict() == repo.model.to_dict()
    assert osp.isfile(SUPERPIXEL_CHECKPOINT)


def test_model_cached_per_device(model):
    assert load_superpixel_model(torch.device('cpu')) is model
    assert not model.training
    with pytest.raises(ValueError, match="device='gpu0'"):
        superpixels(np.zeros((32, 32, 3), np.uint8), 4, device='gpu0')


@pytest.mark.parametrize('k', [200, 600])
def test_rgb_array_and_path_equal_inference_superpixel(refs, k):
    for path in LANDSCAPE + [PORTRAIT]:
        ref = refs[(path, k)]
        np.testing.assert_array_equal(superpixels(_rgb(path), k, start_label=0), ref)
        np.testing.assert_array_equal(superpixels(path, n_segments=k), ref + 1)  # skimage's 1


def test_float_tensor_and_batch_inputs(refs):
    path = PORTRAIT
    rgb = _rgb(path)
    ref = refs[(path, 600)]
    np.testing.assert_array_equal(superpixels(rgb / 255.0, start_label=0), ref)
    np.testing.assert_array_equal(superpixels(rgb.astype(np.float32) / 255, start_label=0), ref)
    chw = torch.from_numpy(rgb).permute(2, 0, 1)
    np.testing.assert_array_equal(superpixels(chw, start_label=0), ref)
    np.testing.assert_array_equal(superpixels(torch.from_numpy(rgb), start_label=0), ref)
    np.testing.assert_array_equal(superpixels(chw.float() / 255, start_label=0), ref)
    # batches: a list (any sizes) -> list; N x H x W x 3 / N x 3 x H x W -> N x H x W
    out = superpixels([PORTRAIT, _rgb(LANDSCAPE[0])], 200, start_label=5)
    assert isinstance(out, list) and len(out) == 2
    np.testing.assert_array_equal(out[0], refs[(PORTRAIT, 200)] + 5)
    np.testing.assert_array_equal(out[1], refs[(LANDSCAPE[0], 200)] + 5)
    stack = np.stack([_rgb(p) for p in LANDSCAPE])
    expect = np.stack([refs[(p, 200)] for p in LANDSCAPE])
    np.testing.assert_array_equal(superpixels(stack, 200, start_label=0), expect)
    np.testing.assert_array_equal(
        superpixels(torch.from_numpy(stack).permute(0, 3, 1, 2), 200, start_label=0), expect)


def test_soft_assignment(refs):
    rgb = _rgb(LANDSCAPE[0])
    labels, soft = superpixels(rgb, 200, start_label=0, return_soft=True)
    np.testing.assert_array_equal(labels, refs[(LANDSCAPE[0], 200)])
    h, w = rgb.shape[:2]
    probs, cand = soft['probs'], soft['candidates']
    assert probs.shape == (h, w, 9) and cand.shape == (h, w, 9) and soft['num_superpixels'] == 200
    torch.testing.assert_close(probs.sum(-1), torch.ones(h, w))
    assert int(cand.min()) >= -1 and int(cand.max()) == 199
    assert float(probs[cand < 0].abs().sum()) == 0  # absent neighbours of border cells
    best = cand.gather(-1, probs.argmax(-1, keepdim=True))[..., 0]
    assert torch.equal(best, soft['hard'])
    # before connectivity: every pixel's hard label is a center id; connectivity only splits
    # / merges, so most pixels keep a one-to-one label correspondence
    assert int(soft['hard'].unique().numel()) == 200


def test_float_values_are_rounded_to_8_bits_on_both_paths(refs, model):
    """A float image is quantised as ``round(255 x)`` (not truncated), and the soft path (a
    float tensor, BGR-flipped, straight-through rounded) gives the labels of the label path;
    the shared model takes no gradient unless asked."""
    from clustseg.apis.superpixel_api import _to_bgr_uint8
    assert (_to_bgr_uint8('x', np.full((4, 4, 3), 0.5)) == 128).all()  # 127.5
    rgb = _rgb(LANDSCAPE[0])
    ref = refs[(LANDSCAPE[0], 200)]
    x = ((torch.from_numpy(rgb).permute(2, 0, 1).double() + 0.4) / 255).clamp(max=1)  # ~rgb
    np.testing.assert_array_equal(superpixels(x.float(), 200, start_label=0), ref)
    labels, _ = superpixels(x.float(), 200, start_label=0, return_soft=True)
    np.testing.assert_array_equal(labels, ref)
    assert not any(p.requires_grad for p in model.parameters())


def test_soft_assignment_is_differentiable():
    rng = np.random.default_rng(0)
    img = torch.tensor(rng.random((3, 48, 64)), dtype=torch.float32, requires_grad=True)
    labels, soft = superpixels(img, 12, return_soft=True)
    assert labels.shape == (48, 64) and labels.min() == 1
    assert soft['probs'].requires_grad
    (soft['probs'] * torch.arange(9.0)).sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()
    assert float(img.grad.abs().sum()) > 0


def test_import_stays_light():
    code = ('import sys, clustseg; '
            "assert 'clustseg.apis.superpixel_api' not in sys.modules; "
            "assert 'onnxruntime' not in sys.modules; "
            'from clustseg import superpixels; '
            "assert superpixels.__module__ == 'clustseg.apis.superpixel_api'")
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)


@pytest.mark.parametrize('image, kwargs, error, match', [
    (np.zeros((40, 40), np.uint8), {}, ValueError, r'image: .*2-D .*grayscale'),
    (np.zeros((40, 40, 4), np.uint8), {}, ValueError, r'image: .*RGBA'),
    (np.zeros((3, 40, 40), np.uint8), {}, ValueError, r'channels first'),
    (np.zeros((40, 40, 3), np.uint16), {}, TypeError, r'image: .*uint16'),
    (np.zeros((40, 40, 3), np.int64), {}, TypeError, r'int64'),
    (np.zeros((40, 40, 3), bool), {}, TypeError, r'bool'),
    (np.full((40, 40, 3), 2.0), {}, ValueError, r'\[0, 1\].*got values in \[2, 2\]'),
    (np.full((40, 40, 3), 255.0), {}, ValueError, r'astype\(np.uint8\)'),
    (np.full((40, 40, 3), np.nan), {}, ValueError, r'NaN'),
    (torch.zeros(3, 40, 3), {}, ValueError, r'ambiguous'),
    (torch.zeros(4, 40, 40), {}, ValueError, r'RGBA'),
    (torch.zeros(40, 40, 3, dtype=torch.int32), {}, TypeError, r'torch.int32'),
    ([np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.uint8)], {}, ValueError,
     r'image\[1\]: .*2-D'),
    ([], {}, ValueError, r'empty list'),
    ([[np.zeros((40, 40, 3), np.uint8)]], {}, TypeError, r'nested'),
    ('x.jpg', {'n_segments': 0}, ValueError, r'n_segments must be a positive int, got 0'),
    ('x.jpg', {'n_segments': 6.0}, TypeError, r'n_segments'),
    ('x.jpg', {'n_segments': True}, TypeError, r'n_segments'),
    ('x.jpg', {'start_label': -1}, ValueError, r'start_label'),
    ('x.jpg', {'backend': 'tf'}, ValueError, r'backend must be one of'),
    ('x.jpg', {'backend': 'onnx', 'return_soft': True}, ValueError, r'return_soft'),
    (42, {}, TypeError, r'image: expected .* got int'),
])
def test_bad_inputs(image, kwargs, error, match):
    kwargs.setdefault('n_segments', 4)
    with pytest.raises(error, match=match):
        superpixels(image, **kwargs)


def test_too_small_names_the_limit():
    img = np.zeros((16, 24, 3), np.uint8)  # 2 x 3 cells of 8 x 8 pixels
    assert superpixels(img, 6).shape == (16, 24)
    with pytest.raises(TooManySuperpixelsError,
                       match=r'image: n_segments=7 is too large for this 16 x 24 image: .* '
                       r'at most 6 superpixels') as e:
        superpixels(img, 7)
    assert e.value.max_k == 6
    with pytest.raises(TooManySuperpixelsError, match=r'image\[1\]: n_segments=7'):
        superpixels([np.zeros((64, 64, 3), np.uint8), img], 7)


def test_bad_files_named(repo_root):
    with pytest.raises(MissingInputError, match='nope.jpg'):
        superpixels(str(repo_root / 'nope.jpg'))
    bad = repo_root / 'tests/data/bad/images/jpg/truncated.jpg'
    with pytest.raises(BadInputError, match='truncated.jpg'):
        superpixels(bad)


def test_clear_cache_forgets_the_models():
    first = load_superpixel_model('cpu')
    clear_cache()
    second = load_superpixel_model('cpu')
    assert second is not first
    assert load_superpixel_model('cpu') is second
