"""Superpixels in one call, as easy as ``skimage.segmentation.slic``.

>>> from clustseg import superpixels
>>> labels = superpixels(image, n_segments=600)   # image: H x W x 3 RGB

The shipped model (``clustseg_compact-nodec_1xb4-3k_bsds500-superpixel``, see
``docs/model_zoo.md``) lives inside the package (:mod:`clustseg.weights`); it is loaded on the
first call and cached per device (:func:`load_superpixel_model`). No config or checkpoint path
is needed.

Input conventions (every image ``H x W`` pixels, colour, **RGB** channel order as skimage, PIL,
matplotlib and torchvision use):

* ``np.ndarray`` ``H x W x 3``: ``uint8`` (0..255) or floating point in ``[0, 1]`` (as
  skimage's float images); a float image is quantised to 8 bits (``round(255 x)``) since the
  model sees 8-bit images, and values outside ``[0, 1]`` are an error (no silent rescaling).
* ``torch.Tensor``: ``3 x H x W`` (torchvision's layout) or ``H x W x 3``, same dtypes and
  ranges; a shape that is both (``3 x W x 3``) is refused as ambiguous.
* ``str`` / ``os.PathLike``: an image file, read checked (:func:`clustseg.datasets.read_image`)
  and converted as the datasets convert files: grayscale repeated to 3 channels, alpha
  dropped, 16-bit scaled to 8, palette expanded (arrays of those kinds are refused below, since
  an array does not say how it was stored).
* A batch: a list / tuple of the above, an ``N x H x W x 3`` array, or an ``N x 3 x H x W`` /
  ``N x H x W x 3`` tensor. Images run one at a time (the same computation as one image).

Everything else (grayscale ``H x W`` or RGBA arrays, other dtypes, NaN, an image too small for
``n_segments``) is an error that names the input and what it expected.
"""
import os
import threading
from typing import Any, List, Tuple, Union

import numpy as np
import torch

from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError
from clustseg.models.utils import enforce_connectivity

#: Default number of superpixels (the shipped model's ``test_cfg.num_superpixels``).
DEFAULT_N_SEGMENTS = 600
#: ``backend`` values of :func:`superpixels`.
BACKENDS = ('torch', 'onnx')

_MODELS = {}
_LOCK = threading.Lock()


def _device_key(device) -> str:
    try:
        return str(torch.device(device))
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device={device!r} is not a torch device (e.g. 'cpu', 'cuda', "
                         f"'cuda:1'): {e}") from None


def load_superpixel_model(device: Union[str, torch.device] = 'cpu'):
    """The shipped superpixel model on ``device``, built and loaded once per device.

    The weights are loaded weights-only through the project's checked loader
    (:func:`clustseg.utils.load_from_checked_file`).

    Args:
        device (str | torch.device): e.g. ``'cpu'``, ``'cuda'``, ``'cuda:1'``.

    Returns:
        SuperpixelSegmentor: in eval mode, shared by every call on that device (do not train
        or modify it; build your own with :func:`clustseg.apis.init_model` for that).
    """
    key = _device_key(device)
    with _LOCK:
        model = _MODELS.get(key)
        if model is None:
            from clustseg.weights import SUPERPIXEL_CHECKPOINT, SUPERPIXEL_CONFIG
            from .inference import init_model
            model = init_model(SUPERPIXEL_CONFIG, SUPERPIXEL_CHECKPOINT, device=key)
            model.requires_grad_(False)
            _MODELS[key] = model
    return model


def clear_cache() -> None:
    """Forget the cached models (and exported ONNX sessions) of every device."""
    with _LOCK:
        _MODELS.clear()
    from . import superpixel_onnx
    superpixel_onnx.clear_sessions()


# --------------------------------------------------------------------------- inputs
def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _split_batch(image) -> Tuple[List[Tuple[str, Any]], str]:
    """``image`` -> ([(name, single image), ...], kind) with kind ``'single'``, ``'list'`` or
    ``'stack'`` (an N x ... array / tensor: the labels are stacked)."""
    if isinstance(image, (list, tuple)):
        if len(image) == 0:
            raise ValueError('image: got an empty list (expected one or more images)')
        items = []
        for i, x in enumerate(image):
            if isinstance(x, (list, tuple)):
                raise TypeError(f'image[{i}]: nested lists are not images (a batch is one '
                                'list of images)')
            items.append((os.fspath(x) if _is_path(x) else f'image[{i}]', x))
        return items, 'list'
    if _is_path(image):
        return [(os.fspath(image), image)], 'single'
    if isinstance(image, (np.ndarray, torch.Tensor)):
        if image.ndim == 4:
            if image.shape[0] == 0:
                raise ValueError('image: got an empty batch (N = 0)')
            return [(f'image[{i}]', image[i]) for i in range(image.shape[0])], 'stack'
        return [('image', image)], 'single'
    raise TypeError(f'image: expected an H x W x 3 array, a tensor, a path or a list of them, '
                    f'got {type(image).__name__}')


def _layout(name, x, tensor: bool) -> Tuple[bool, str]:
    """Checks the shape of one image; returns whether it is channels-first."""
    shape = tuple(x.shape)
    what = '3 x H x W or H x W x 3 tensor' if tensor else 'H x W x 3 array'
    if x.ndim == 2:
        raise ValueError(f'{name}: expected an {what} (RGB), got a 2-D {shape} (grayscale?) '
                         'image; repeat it to 3 channels first (np.stack([img] * 3, -1))')
    if x.ndim != 3:
        raise ValueError(f'{name}: expected an {what} (RGB), got shape {shape}')
    first = tensor and shape[0] == 3
    last = shape[2] == 3
    if first and last:
        raise ValueError(f'{name}: shape {shape} is ambiguous (3 x H x W or H x W x 3?); '
                         'give a numpy H x W x 3 array')
    if not (first or last):
        chans = shape[0] if tensor and shape[0] in (1, 4) else shape[2]
        hint = (' (RGBA? drop the alpha channel: img[..., :3])' if chans == 4 else
                ' (grayscale? repeat it to 3 channels)' if chans == 1 else '')
        if not tensor and shape[0] == 3:
            hint = ' (channels first? numpy images are H x W x 3: np.moveaxis(img, 0, -1))'
        raise ValueError(f'{name}: expected 3 colour channels (an {what}), got shape '
                         f'{shape}{hint}')
    if min(shape[1:] if first else shape[:2]) < 1:
        raise ValueError(f'{name}: empty image of shape {shape}')
    return first


def _check_float_range(name, lo, hi):
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f'{name}: the float image holds NaN or infinite values')
    if lo < 0 or hi > 1:
        raise ValueError(f'{name}: a float image must hold values in [0, 1] (as skimage\'s), '
                         f'got values in [{lo:g}, {hi:g}]; for 0..255 values pass '
                         'img.astype(np.uint8) (after rounding / clipping)')


def _check_dtype(name, dtype, is_float, is_uint8):
    if not (is_float or is_uint8):
        raise TypeError(f'{name}: expected a uint8 (0..255) or float ([0, 1]) image, got '
                        f'{dtype}')


def _to_bgr_uint8(name, x) -> np.ndarray:
    """One image (path, array or tensor) -> H x W x 3 uint8 BGR (the model's input), checked."""
    if _is_path(x):
        from clustseg.datasets import read_image
        return read_image(os.fspath(x))  # BGR, or BadInputError / MissingInputError naming it
    if isinstance(x, torch.Tensor):
        _check_dtype(name, x.dtype, x.is_floating_point(), x.dtype == torch.uint8)
        first = _layout(name, x, tensor=True)
        x = x.detach().cpu()
        if first:
            x = x.permute(1, 2, 0)
        x = x.float().numpy() if x.dtype in (torch.float16, torch.bfloat16) else x.numpy()
    elif isinstance(x, np.ndarray):
        _check_dtype(name, x.dtype, x.dtype.kind == 'f', x.dtype == np.uint8)
        _layout(name, x, tensor=False)
    else:
        raise TypeError(f'{name}: expected an H x W x 3 array, a tensor or a path, got '
                        f'{type(x).__name__}')
    if x.dtype != np.uint8:
        _check_float_range(name, float(np.min(x)), float(np.max(x)))
        x = np.rint(x.astype(np.float64) * 255).astype(np.uint8)
    return np.ascontiguousarray(x[..., ::-1])


def _to_bgr_float(name, x) -> torch.Tensor:
    """One image -> 3 x H x W float BGR in [0, 255], differentiable for a float tensor (8-bit
    rounding with a straight-through gradient, so that the values equal the label path's)."""
    if not (isinstance(x, torch.Tensor) and x.is_floating_point()):
        return torch.from_numpy(_to_bgr_uint8(name, x)).permute(2, 0, 1).float()
    first = _layout(name, x, tensor=True)
    d = x.detach()
    _check_float_range(name, float(d.min()), float(d.max()))
    x = x.float() if first else x.float().permute(2, 0, 1)
    x = x * 255
    x = x + (x.detach().round() - x.detach())  # straight-through 8-bit rounding
    return x.flip(0)


def _check_n_segments(n_segments) -> int:
    if isinstance(n_segments, (bool, np.bool_)) or not isinstance(n_segments,
                                                                   (int, np.integer)):
        raise TypeError(f'n_segments must be a positive int, got {n_segments!r}')
    if n_segments < 1:
        raise ValueError(f'n_segments must be a positive int, got {n_segments}')
    return int(n_segments)


def _model_input(model, name, img_chw, hw):
    """3 x H x W BGR (uint8 or float) -> the model's normalised 1 x 3 x H x W input, through its
    data preprocessor (normalisation, RGB order, the ``max_test_pixels`` check naming
    ``name``): the path of :func:`clustseg.apis.inference_superpixel`."""
    from mmseg.structures import SegDataSample
    sample = SegDataSample(metainfo=dict(img_path=name, ori_shape=hw, img_shape=hw))
    return model.data_preprocessor(dict(inputs=[img_chw], data_samples=[sample]),
                                   False)['inputs']


def _too_many(name, k, hw, err):
    return TooManySuperpixelsError(
        f'{name}: n_segments={k} is too large for this {hw[0]} x {hw[1]} image: the model '
        f'places one seed per 8 x 8 pixel cell, so it allows at most {err.max_k} superpixels '
        f'here ({err})', err.max_k)


def _soft(model, inputs, k):
    """Labels and the local soft assignment of one image (gradient kept)."""
    out = model.cluster(inputs, k, return_all=False, dense_final=False, probs=True)
    h, w = out['hw']
    if out['local'] is None:
        raise ValueError(f'return_soft=True needs a model with final_em_mode=\'local\', not '
                         f'{model.final_em_mode!r}')
    grid = out['local']['grid']
    probs = out['local']['probs'][-1]
    probs = probs.reshape(probs.shape[0], probs.shape[1], 9, -1)  # B x K x 9 x P (one head)
    # per pixel: its cell's 9 candidates (slot layout -> pixels, see LocalGrid)
    per_pix = grid.scatter(probs.transpose(2, 3))[0].view(h, w, 9)
    cand = torch.where(grid.cand_ok, grid.cand, torch.full_like(grid.cand, -1))
    cand = grid.scatter(cand[None, :, None, :].expand(1, -1, grid.slots, -1))[0].view(h, w, 9)
    hard = grid.candidate_labels(out['local']['logits'][-1]).view(h, w)
    return dict(probs=per_pix, candidates=cand, hard=hard, num_superpixels=k)


def _post(model, hard: np.ndarray, k: int) -> np.ndarray:
    """The segmentor's connectivity step (:meth:`SuperpixelSegmentor.superpixels`)."""
    h, w = hard.shape
    return enforce_connectivity(hard, model.min_size(h, w, k))


def superpixels(image, n_segments: int = DEFAULT_N_SEGMENTS, *, start_label: int = 1,
                device: Union[str, torch.device] = 'cpu', backend: str = 'torch',
                return_soft: bool = False):
    """Superpixels of an image (or a batch) with the shipped ClustSeg model.

    A drop-in for ``skimage.segmentation.slic(image, n_segments=...)``: RGB input, ``H x W``
    integer labels starting at ``start_label``. See the module docstring for the accepted
    inputs (uint8 or ``[0, 1]`` float RGB arrays, ``3 x H x W`` / ``H x W x 3`` tensors, paths,
    batches).

    Args:
        image: one image or a batch (module docstring).
        n_segments (int): K, the number of superpixels before the connectivity step (the
            result has about K labels: small fragments are merged, disconnected parts split).
            At most one per 8 x 8 pixel cell of the image (``ceil(H / 8) * ceil(W / 8)``);
            more raises :class:`TooManySuperpixelsError` naming the image and that limit.
        start_label (int): the first label (skimage's ``slic`` uses 1 by default; 0 gives the
            labels of :func:`clustseg.apis.inference_superpixel`).
        device (str | torch.device): where the model runs (cached per device).
        backend (str): ``'torch'`` (default) or ``'onnx'``: the network exported to ONNX (once
            per image size and K, kept in memory) and run by onnxruntime on the CPU (faster on
            a CPU, ``docs/benchmark.md``; needs the ``onnx`` extra). Its labels equal the torch
            backend's except at near-ties between two centers (a few pixels per image,
            ``tests/test_apis/test_superpixel_onnx.py``). Only ``device='cpu'``.
        return_soft (bool): also return the model's soft assignment (torch backend only).

    Returns:
        np.ndarray: ``H x W`` int64 labels in ``start_label..start_label + n - 1``, for one
        image; a list of them for a list; an ``N x H x W`` array for an ``N x ...`` array or
        tensor. With ``return_soft=True``: ``(labels, soft)`` with ``soft`` (a list of them for
        a batch) a dict of tensors on ``device``:

        * ``probs``: ``H x W x 9`` float, each pixel's softmax over its 9 candidate centers
          (the centers of its own and the 8 neighbouring grid cells) in the last
          full-resolution E-step. It carries a gradient to the model's parameters (call
          ``load_superpixel_model(device).requires_grad_(True)`` to get them) and to a float
          tensor ``image`` with ``requires_grad`` (8-bit rounding passes the gradient
          straight through).
        * ``candidates``: ``H x W x 9`` int64 center id (0..K-1) of each candidate, -1 where a
          cell at the border has no such neighbour (its probability is 0).
        * ``hard``: ``H x W`` int64, the best candidate's center id: the labels before the
          connectivity step. A dense ``K x H x W`` map:
          ``torch.zeros(K, H * W).scatter_add_(0, candidates.clamp(min=0).view(-1, 9).T,
          probs.view(-1, 9).T)``.
        * ``num_superpixels``: K.

    Raises:
        TypeError / ValueError: a wrong dtype, shape, channel count, value range, argument.
        TooManySuperpixelsError: ``n_segments`` above what the image allows (the message
            and ``.max_k`` give the limit).
        clustseg.datasets.BadInputError / MissingInputError: an unreadable / missing file.
    """
    k = _check_n_segments(n_segments)
    if isinstance(start_label, (bool, np.bool_)) or not isinstance(start_label,
                                                                    (int, np.integer)) \
            or start_label < 0:
        raise ValueError(f'start_label must be an int >= 0, got {start_label!r}')
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'onnx' and return_soft:
        raise ValueError("return_soft=True needs backend='torch' (the ONNX graph ends at the "
                         'hard labels)')
    dev = _device_key(device)
    if backend == 'onnx' and dev != 'cpu':
        raise ValueError(f"backend='onnx' runs on the CPU (onnxruntime), got device={dev!r}")
    items, kind = _split_batch(image)
    model = load_superpixel_model(dev)
    labels, softs = [], []
    for name, x in items:
        if return_soft:
            chw = _to_bgr_float(name, x)
            hw = tuple(chw.shape[1:])
            with torch.enable_grad():
                inputs = _model_input(model, name, chw, hw)
                try:
                    soft = _soft(model, inputs, k)
                except TooManySuperpixelsError as e:
                    raise _too_many(name, k, hw, e) from None
            lbl = _post(model, soft['hard'].cpu().numpy(), k)
            softs.append(soft)
        else:
            bgr = _to_bgr_uint8(name, x)
            hw = bgr.shape[:2]
            if backend == 'onnx':
                from .superpixel_onnx import onnx_hard_labels
                try:
                    hard = onnx_hard_labels(model, bgr[..., ::-1], k)
                except TooManySuperpixelsError as e:
                    raise _too_many(name, k, hw, e) from None
                lbl = _post(model, hard, k)
            else:
                chw = torch.from_numpy(bgr).permute(2, 0, 1)
                with torch.no_grad():
                    inputs = _model_input(model, name, chw, hw)
                    try:
                        lbl = model.superpixels(inputs, k)[0]
                    except TooManySuperpixelsError as e:
                        raise _too_many(name, k, hw, e) from None
        labels.append(lbl + int(start_label) if start_label else lbl)
    if kind == 'single':
        out, soft_out = labels[0], (softs[0] if softs else None)
    elif kind == 'stack':
        out, soft_out = np.stack(labels), softs
    else:
        out, soft_out = labels, softs
    return (out, soft_out) if return_soft else out


__all__ = ['superpixels', 'load_superpixel_model', 'clear_cache', 'DEFAULT_N_SEGMENTS',
           'BACKENDS']
