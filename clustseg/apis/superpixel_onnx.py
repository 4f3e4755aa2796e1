"""ONNX export of the superpixel network and its onnxruntime backend.

The exported graph: ``image`` (``1 x H x W x 3`` uint8 RGB) -> the model's pre-processing
(normalisation) -> backbone, pixel decoder, grid seeds, decoder, embedding head, the
full-resolution local E/M -> ``labels`` (``1 x H x W`` int64, the center id of each pixel's
best candidate: the hard labels *before* the connectivity step, which stays in numpy,
:func:`clustseg.models.utils.enforce_connectivity`).

Fixed size. The image size and K are fixed at export time: the seed grid and the local E/M's
cell layout (:class:`LocalGrid`, which pixels are candidates of which center) are built in
Python from (K, H, W) and enter the graph as constants. Making them dynamic would mean
rebuilding the layout (a stable argsort of the cells and integer cell arithmetic) inside the
graph, for no gain in the intended use (one export per image size and K, as
:func:`onnx_hard_labels` caches them). The batch size is 1.

Export details. The TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``,
opset 17) traces the model once. Two things are set for the duration of the export only:
``aten::index_add`` (the M-step's sum over the pixels of each center, with repeated indices)
is exported as ``ScatterElements(reduction='add')``, which the stock exporter refuses for
repeated indices; and the local E/M's layout cache is keyed by plain ints, so that the traced
(tensor-valued) sizes find the layout built by the warm-up run instead of building it again
inside the graph. The summation order of ``ScatterElements`` and onnxruntime's kernels differ
from PyTorch's in the last float bits: the labels are equal except at near-ties, pixels whose
two best candidate centers score the same up to float rounding
(``tests/test_apis/test_superpixel_onnx.py``).
"""
import collections
import contextlib
import io
import threading
import warnings

import numpy as np
import torch
import torch.nn as nn

from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError

#: ONNX opset of the export (``ScatterElements`` with ``reduction='add'`` needs >= 16).
OPSET = 17

#: How many onnxruntime sessions (one per model, K, image size and thread count) are kept;
#: the least recently used one is dropped beyond that (each holds its own graph and buffers).
MAX_SESSIONS = 4
_SESSIONS = collections.OrderedDict()
_LOCK = threading.Lock()


class SuperpixelOnnxWrapper(nn.Module):
    """uint8 RGB ``1 x H x W x 3`` -> hard labels ``1 x H x W`` (before connectivity).

    The pre-processing is the model's data preprocessor's (``(x - mean) / std`` on RGB) in
    torch ops, so that it is part of the graph.

    Args:
        model: a :class:`SuperpixelSegmentor` (``final_em_mode='local'``).
        n_segments (int): K.
    """

    def __init__(self, model, n_segments: int):
        super().__init__()
        if not getattr(model, 'local_final_em', False):
            raise ValueError('ONNX export supports SuperpixelSegmentor models with '
                             "final_em_mode='local'")
        self.model = model
        self.n_segments = int(n_segments)
        dp = model.data_preprocessor
        if not getattr(dp, '_enable_normalize', False):
            raise ValueError('ONNX export expects a data preprocessor that normalises '
                             '(mean / std)')
        self.register_buffer('mean', dp.mean.detach().float().view(1, 3, 1, 1).clone(),
                             persistent=False)
        self.register_buffer('std', dp.std.detach().float().view(1, 3, 1, 1).clone(),
                             persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.permute(0, 3, 1, 2).float()
        x = (x - self.mean) / self.std
        out = self.model.cluster(x, self.n_segments, return_all=False, dense_final=False,
                                 probs=False)
        h, w = out['hw']
        hard = out['local']['grid'].candidate_labels(out['local']['logits'][-1])
        return hard.view(-1, h, w)


def _index_add_symbolic():
    from torch.onnx import symbolic_helper as sh

    @sh.parse_args('v', 'i', 'v', 'v', 'none')
    def index_add(g, self, dim, index, source, alpha=None):
        rank = sh._get_tensor_rank(source)
        if rank is None:
            raise RuntimeError('ONNX export of index_add: the rank of its source is unknown')
        shape = [1] * rank
        shape[dim] = -1
        idx = g.op('Reshape', index, g.op('Constant', value_t=torch.tensor(shape)))
        idx = g.op('Expand', idx, g.op('Shape', source))
        return g.op('ScatterElements', self, idx, source, axis_i=dim, reduction_s='add')

    return index_add


class _IntKeyCache(dict):
    """The local E/M layout cache, keyed by plain ints (traced sizes are 0-d tensors)."""

    @staticmethod
    def _norm(key):
        return tuple(tuple(int(v) for v in x) if isinstance(x, (tuple, list)) else x
                     for x in key)

    def get(self, key, default=None):
        return super().get(self._norm(key), default)

    def __setitem__(self, key, value):
        super().__setitem__(self._norm(key), value)


@contextlib.contextmanager
def _export_context():
    from clustseg.models.layers import local_em
    if not isinstance(getattr(local_em, '_CACHE', None), dict):
        raise RuntimeError('ONNX export: clustseg.models.layers.local_em has no layout cache '
                           '(_CACHE) to key by ints; update clustseg/apis/superpixel_onnx.py')
    old = local_em._CACHE
    local_em._CACHE = _IntKeyCache(old)
    torch.onnx.register_custom_op_symbolic('aten::index_add', _index_add_symbolic(), OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic('aten::index_add', OPSET)
        local_em._CACHE = old


def export_superpixel_onnx(model, file, n_segments: int, height: int, width: int) -> None:
    """Exports ``model`` (on the CPU) for ``height x width`` RGB images and K = ``n_segments``.

    Args:
        model: a :class:`SuperpixelSegmentor`, e.g.
            :func:`clustseg.apis.superpixel_api.load_superpixel_model`.
        file (str | io.BytesIO): where the ``.onnx`` goes. Input ``image`` (``1 x H x W x 3``
            uint8 RGB), output ``labels`` (``1 x H x W`` int64, before connectivity).
        n_segments, height, width (int): the fixed K and image size.

    Raises:
        TooManySuperpixelsError: K above what a ``height x width`` image allows.
    """
    for name, v in (('n_segments', n_segments), ('height', height), ('width', width)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f'{name} must be a positive int, got {v!r}')
    devices = {p.device.type for p in model.parameters()}
    if devices != {'cpu'}:
        raise ValueError(f'ONNX export runs on the CPU: the model is on {sorted(devices)} '
                         "(load it with device='cpu')")
    wrapper = SuperpixelOnnxWrapper(model, n_segments).eval()
    dummy = torch.zeros(1, int(height), int(width), 3, dtype=torch.uint8)
    with _export_context(), torch.no_grad(), warnings.catch_warnings():
        # the trace fixes Python-side sizes and branches: intended (fixed size and K)
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        warnings.simplefilter('ignore', DeprecationWarning)
        wrapper(dummy)  # builds the layouts (or raises TooManySuperpixelsError)
        torch.onnx.export(wrapper, (dummy, ), file, dynamo=False, opset_version=OPSET,
                          input_names=['image'], output_names=['labels'],
                          do_constant_folding=True)


def onnx_session(model, n_segments: int, height: int, width: int, num_threads=None):
    """An onnxruntime CPU session of the exported network, cached by (K, H, W, threads).

    A new key exports the network (about a second, fixed size and K); the
    :data:`MAX_SESSIONS` most recently used sessions are kept.

    ``num_threads``: onnxruntime's intra-op threads (default ``torch.get_num_threads()``, the
    torch backend's)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("backend='onnx' needs onnxruntime (and onnx to export): pip "
                          "install -r requirements/onnx.txt, or clustseg[onnx]") from None
    threads = int(num_threads or torch.get_num_threads())
    key = (id(model), int(n_segments), int(height), int(width), threads)
    with _LOCK:
        sess = _SESSIONS.get(key)
        if sess is not None:
            _SESSIONS.move_to_end(key)
        else:
            buf = io.BytesIO()
            export_superpixel_onnx(model, buf, n_segments, height, width)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(buf.getvalue(), opts,
                                        providers=['CPUExecutionProvider'])
            _SESSIONS[key] = sess
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
    return sess


def onnx_hard_labels(model, rgb: np.ndarray, n_segments: int) -> np.ndarray:
    """``H x W x 3`` uint8 RGB -> ``H x W`` int64 hard labels (before connectivity) by
    onnxruntime (:func:`onnx_session`).

    Raises:
        TooManySuperpixelsError: as :meth:`SuperpixelSegmentor.cluster`.
    """
    h, w = rgb.shape[:2]
    sess = onnx_session(model, n_segments, h, w)
    img = np.ascontiguousarray(rgb, dtype=np.uint8)[None]
    return sess.run(['labels'], {'image': img})[0][0]


def clear_sessions() -> None:
    """Forget the cached onnxruntime sessions."""
    with _LOCK:
        _SESSIONS.clear()


__all__ = ['SuperpixelOnnxWrapper', 'export_superpixel_onnx', 'onnx_session',
           'onnx_hard_labels', 'clear_sessions', 'OPSET', 'MAX_SESSIONS',
           'TooManySuperpixelsError']
