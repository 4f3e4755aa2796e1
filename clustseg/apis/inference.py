"""High-level inference helpers (demo, curve tool, assignment-map tool, notebooks)."""
import os

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

from clustseg.models.layers.local_em import LocalAssignment
from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError


def init_model(config, checkpoint=None, device='cpu', cfg_options=None, partial_load=False):
    """Builds a model from a config file/Config and optionally loads a checkpoint
    (:func:`load_model_checkpoint`: it must fit the model, unless ``partial_load``).

    Returns the model in eval mode with ``model.cfg`` attached (and ``model.dataset_meta`` when
    the checkpoint's meta holds one, as mmengine's Runner writes it).
    """
    from clustseg.registry import MODELS
    from clustseg.utils import merge_cfg_options, register_all_modules
    if isinstance(config, str):
        config = Config.fromfile(config)
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a path or a Config, got {type(config)}')
    merge_cfg_options(config, cfg_options, getattr(config, 'filename', None) or 'the config')
    from clustseg.engine.hooks.model_check_hook import check_model_config
    check_model_config(config)
    register_all_modules(scope=config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    model.cfg = config
    if checkpoint is not None:
        load_model_checkpoint(model, checkpoint, partial_load=partial_load)
    return model.to(device).eval()


def load_model_checkpoint(model, checkpoint, partial_load=False) -> None:
    """Loads ``checkpoint`` (a path or remote name, read weights-only) into ``model`` (from
    :func:`init_model`) as ``tools/test.py`` requires: every model key in it with the model's
    shape, every key of it in the model. Otherwise
    :class:`~clustseg.engine.hooks.ModelCheckError` names the keys, unless ``partial_load``
    (then the matching part is loaded and the rest logged, as mmengine does). Sets
    ``model.dataset_meta`` from the checkpoint's meta when it holds one."""
    from clustseg.engine.hooks.model_check_hook import ModelCheckError, checkpoint_problem
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    problem = checkpoint_problem(model, ckpt)
    if problem is not None and not partial_load:
        where = getattr(getattr(model, 'cfg', None), 'filename', None) or 'its config'
        raise ModelCheckError(
            f'checkpoint {checkpoint} does not fit the model {type(model).__name__} of '
            f'{where}: {problem}. Is it a checkpoint of this config? To load the matching '
            'part anyway, pass partial_load=True')
    if problem is not None:
        print_log(f'partial load (partial_load=True): {checkpoint}: {problem}',
                  logger='current', level=30)
    _load_checkpoint_to_model(model, ckpt, revise_keys=[(r'^module\.', '')])
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    if isinstance(meta, dict) and isinstance(meta.get('dataset_meta'), dict):
        model.dataset_meta = meta['dataset_meta']


def _test_pipeline(cfg, from_array=False):
    """The config's test pipeline without annotation loading (and, for an in-memory image,
    without any loading step). mmcv's ``LoadImageFromFile`` becomes ``LoadImageChecked``, so
    that files are read as by the dataset pipeline (:func:`clustseg.datasets.read_image`)."""
    steps = []
    for t in cfg.test_dataloader.dataset.pipeline:
        if 'Annotations' in t['type'] or (from_array and 'Load' in t['type']):
            continue
        if t['type'].split('.')[-1] == 'LoadImageFromFile':
            t = dict(type='LoadImageChecked', to_float32=t.get('to_float32', False))
        steps.append(t)
    return Compose(steps)


@torch.no_grad()
def inference_superpixel(model, img, num_superpixels=None, img_path=None, channel_order='bgr'):
    """Superpixels of one image.

    Input convention: the pixels the dataset pipeline reads, i.e. an ``H x W x 3`` **uint8**
    array (0..255) in **BGR** order (OpenCV's, :func:`clustseg.datasets.read_image`'s). An
    RGB array (PIL, matplotlib, torchvision) is converted when ``channel_order='rgb'`` is
    given; a float array (e.g. values in [0, 1]) or any other dtype is refused with a
    ``TypeError``, since its scale cannot be known (multiply by 255 and cast to uint8 first).
    Without this check, such inputs would give other superpixels without any error.

    Args:
        model: a :class:`SuperpixelSegmentor` from :func:`init_model`.
        img (str | np.ndarray): path (read checked, see :class:`LoadImageChecked`; a bad file
            raises :class:`~clustseg.datasets.BadInputError` naming it) or ``H x W x 3``
            uint8 array in ``channel_order``.
        num_superpixels (int, optional): K (default ``model.test_cfg.num_superpixels``).
        img_path (str, optional): the file an array came from; it goes into the sample's
            metainfo (``img_path``) so that errors can name it.
        channel_order (str): ``'bgr'`` (default) or ``'rgb'``: the channel order of an
            array ``img`` (files are always read as BGR).

    Returns:
        np.ndarray: H x W int64 labels 0..n-1 (after the connectivity step).
    """
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    if isinstance(img, np.ndarray):
        _check_array(img, img_path)
        if channel_order == 'rgb':
            img = np.ascontiguousarray(img[..., ::-1])
    batch = _preprocess(model, img, img_path)
    try:
        return model.superpixels(batch['inputs'], num_superpixels)[0]
    except TooManySuperpixelsError as e:  # say which image is too small for K
        raise TooManySuperpixelsError(f'{_name(img, img_path)}: {e}', e.max_k) from None


def _name(img, img_path=None):
    """How errors name an input: its path, else ``'the input array'``."""
    if isinstance(img, (str, os.PathLike)):
        return str(img)
    return str(img_path) if img_path is not None else 'the input array'


def _check_array(img: np.ndarray, img_path=None) -> None:
    """An image array must be ``H x W x 3`` uint8 (0..255), as the dataset pipeline reads
    files: other shapes are a ``ValueError``, other dtypes a ``TypeError`` naming the input,
    since a float or 16-bit array's scale cannot be known and would give another prediction
    without any error."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'{_name(img, img_path)}: expected an H x W x 3 array, got shape '
                         f'{img.shape}')
    if img.dtype != np.uint8:
        hint = (' (values in [0, 1]? pass (img * 255).round().astype(np.uint8))'
                if img.dtype.kind == 'f' else '')
        raise TypeError(f'{_name(img, img_path)}: expected a uint8 image (0..255, as '
                        f'read_image gives), got {img.dtype}{hint}')


def _preprocess(model, img, img_path=None):
    """One image through the config's test pipeline (no annotations) and the model's data
    preprocessor -> ``dict(inputs=1 x 3 x H' x W' float, data_samples=[sample])``; ``H' x W'``
    is the resized, padded size, the sample's metainfo holds ``img_shape`` / ``ori_shape``.

    The pipeline is built in the model's own registry scope (its config's ``default_scope``),
    so that models of several libraries (mmdet, mmseg) can be used in one process."""
    if isinstance(img, (str, os.PathLike)):
        results = dict(img_path=str(img))
    elif isinstance(img, np.ndarray):
        _check_array(img, img_path)
        results = dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        if img_path is not None:
            results['img_path'] = str(img_path)
    else:
        raise TypeError('img must be a file path or an H x W x 3 BGR uint8 array, got '
                        f'{type(img).__name__}')
    with DefaultScope.overwrite_default_scope(model.cfg.get('default_scope', 'mmseg')):
        data = _test_pipeline(model.cfg, from_array='img' in results)(results)
    return model.data_preprocessor(dict(inputs=[data['inputs']],
                                        data_samples=[data['data_samples']]), False)


def _core(model):
    """The :class:`ClusteringCore` of a ClustSeg detector or semantic segmentor, or a
    TypeError."""
    from clustseg.models.heads import ClustSegHead, ClustSegSemanticHead
    for name in ('decode_head', 'panoptic_head'):
        head = getattr(model, name, None)
        if isinstance(head, (ClustSegSemanticHead, ClustSegHead)):
            return head.core
    raise TypeError(f'{type(model).__name__} is no ClustSeg model: it has neither a '
                    'ClustSegHead (model.panoptic_head) nor a ClustSegSemanticHead '
                    '(model.decode_head)')


def _clustseg_head(model):
    """The :class:`ClustSegHead` of an mmdet MaskFormer-family detector, or a TypeError."""
    from clustseg.models.heads import ClustSegHead
    head = getattr(model, 'panoptic_head', None)
    if not isinstance(head, ClustSegHead):
        raise TypeError(f'{type(model).__name__} has no ClustSegHead (model.panoptic_head): '
                        'expected a ClustSeg panoptic / instance detector')
    return head


@torch.no_grad()
def inference_detector(model, img, img_path=None):
    """Panoptic / instance prediction of one image by a ClustSeg detector (mmdet's
    ``MaskFormer`` with a :class:`ClustSegHead`).

    Like ``mmdet.apis.inference_detector``, but the config's test pipeline loses its
    annotation loading (mmdet's keeps ``LoadPanopticAnnotations``, which needs a ground-truth
    file) and files are read checked (:func:`clustseg.datasets.read_image`).

    Args:
        model: a detector from :func:`init_model`.
        img (str | np.ndarray): path (a bad file raises
            :class:`~clustseg.datasets.BadInputError` naming it) or H x W x 3 BGR uint8 array.
        img_path (str, optional): the file an array came from (goes into the metainfo).

    Returns:
        DetDataSample on the CPU, at the original image size: ``pred_panoptic_seg``
        (``sem_seg``: 1 x H x W int, ``label + id * INSTANCE_OFFSET``, ``num_classes`` = void)
        when ``test_cfg.panoptic_on``; ``pred_instances`` (``masks`` N x H x W bool,
        ``bboxes`` N x 4, ``labels`` N, ``scores`` N) when ``test_cfg.instance_on``.
    """
    _clustseg_head(model)
    return _predict(model, img, img_path)


def _predict(model, img, img_path=None):
    """``model.predict`` of one image (:func:`_preprocess`) on the CPU; a plain ValueError
    from the model (an image too small for the model's K centers) names the image and its
    size."""
    batch = _preprocess(model, img, img_path)
    try:
        return model.predict(batch['inputs'], batch['data_samples'])[0].cpu()
    except ValueError as e:
        if type(e) is not ValueError:  # own types keep their own fields and messages
            raise
        h, w = batch['data_samples'][0].metainfo.get('ori_shape', ('?', '?'))[:2]
        raise ValueError(f'{_name(img, img_path)} ({h} x {w}): {e}') from None


def _test_dataset_metainfo(model, datasets) -> dict:
    """The ``METAINFO`` of the class of ``model.cfg``'s test dataset, looked up in the
    registry ``datasets``, updated by the dataset config's ``metainfo``; empty when the
    model has no such config or the class is not registered."""
    try:
        ds_cfg = model.cfg.test_dataloader.dataset
        cls = datasets.get(ds_cfg['type'])
        meta = dict(getattr(cls, 'METAINFO', {}))
        meta.update(ds_cfg.get('metainfo') or {})
    except (AttributeError, KeyError, TypeError):
        meta = {}
    return meta


def detector_dataset_meta(model):
    """Class names and palette for drawing a detector's predictions: the checkpoint's
    ``dataset_meta``, else the ``METAINFO`` of the config's test dataset class, else
    numbered classes (``'0'``, ``'1'``, ...) with mmdet's random palette."""
    meta = getattr(model, 'dataset_meta', None)
    if isinstance(meta, dict) and meta.get('classes'):
        return dict(meta)
    num_classes = _clustseg_head(model).num_classes
    from mmdet.registry import DATASETS
    meta = _test_dataset_metainfo(model, DATASETS)
    if len(meta.get('classes', ())) != num_classes:
        meta = dict(classes=tuple(str(i) for i in range(num_classes)), palette=None)
    return meta


def _to_image_grid(labels, pad_hw, img_hw, ori_hw):
    """h x w cluster ids of a map of the padded input (``pad_hw``) -> the original image's
    H x W: each map pixel covers the input window ``[s i, s (i + 1))`` of its conv stride s
    (the decoder's padding-mask convention, :func:`conv_stride`; nearest resizing when no
    power-of-two stride fits), then the image (``img_hw``, after the test pipeline's resize)
    is cropped and resized (nearest) to ``ori_hw``. Returns an int64 numpy array."""
    from clustseg.models.layers.positional_encoding import conv_stride
    s = conv_stride(tuple(pad_hw), tuple(labels.shape))
    if s is not None:
        x = labels.repeat_interleave(s, 0).repeat_interleave(s, 1)[:pad_hw[0], :pad_hw[1]]
        x = x.float()
    else:
        x = F.interpolate(labels[None, None].float(), size=tuple(pad_hw), mode='nearest')[0, 0]
    x = x[:img_hw[0], :img_hw[1]]
    if tuple(img_hw) != tuple(ori_hw):
        x = F.interpolate(x[None, None], size=tuple(ori_hw), mode='nearest')[0, 0]
    return x.long().cpu().numpy()


@torch.no_grad()
def inference_assignments(model, img, num_superpixels=None, img_path=None):
    """Hard cluster assignment of every E-step for one image (the paper's Fig. 6).

    Every ClustSeg model runs its :class:`~clustseg.models.core.ClusteringCore` with the maps
    kept: detectors with a :class:`ClustSegHead`, semantic segmentors with a
    :class:`ClustSegSemanticHead` (one map per E-step of every decoder layer) and a
    :class:`SuperpixelSegmentor` (its decoder E-steps, then the full-resolution E-steps of its
    final EM; ``num_superpixels`` = K, default ``test_cfg.num_superpixels``).

    Args:
        model: from :func:`init_model`. img, img_path: as for :func:`inference_detector`.

    Returns:
        list of dict(name (``'layer{l}_iter{t}'`` or ``'final_iter{t}'``), stage
        (``'decoder'`` | ``'full'``), layer (int or None), iter, hw (h_l, w_l of the map),
        num_clusters (K), labels = H x W int64 argmax over the K clusters of that E-step's
        probabilities (softmax over clusters), at the original image size).
    """
    from clustseg.models.segmentors.superpixel_segmentor import SuperpixelSegmentor
    from clustseg.models.layers.batch_padding import BatchPadding
    core = None if isinstance(model, SuperpixelSegmentor) else _core(model)  # or a TypeError
    batch = _preprocess(model, img, img_path)
    inputs, ds = batch['inputs'], batch['data_samples'][0]
    pad_hw = inputs.shape[-2:]
    img_hw = ds.metainfo.get('img_shape', pad_hw)[:2]
    ori_hw = ds.metainfo.get('ori_shape', img_hw)[:2]
    if core is None:
        k = model.test_cfg['num_superpixels'] if num_superpixels is None else num_superpixels
        try:
            out = model.cluster(inputs, k, return_all=True)
        except TooManySuperpixelsError as e:
            raise TooManySuperpixelsError(f'{_name(img, img_path)}: {e}', e.max_k) from None
        e_steps = out['e_steps']
        finals = [dict(iter=t, hw=out['hw'], probs=p) for t, p in enumerate(out['final'])]
    else:
        metas = [d.metainfo for d in batch['data_samples']]
        padding = BatchPadding.from_metas(metas, inputs.device, pad_hw)
        e_steps = core(model.extract_feat(inputs), padding, return_maps=True).states
        finals = []
    maps = []
    for stage, steps in (('decoder', e_steps), ('full', finals)):
        for s in steps:
            probs = s['probs']
            if isinstance(probs, LocalAssignment):  # a local decoder level / final E/M
                probs = probs.to_dense()
            probs = probs[0]  # K x N
            hard = probs.argmax(0).view(*s['hw'])
            layer = s.get('layer')
            name = f"layer{layer}_iter{s['iter']}" if stage == 'decoder' else \
                f"final_iter{s['iter']}"
            maps.append(dict(name=name, stage=stage, layer=layer, iter=s['iter'],
                             hw=tuple(s['hw']), num_clusters=probs.shape[0],
                             labels=_to_image_grid(hard, pad_hw, img_hw, ori_hw)))
    return maps


@torch.no_grad()
def inference_segmentor(model, img, img_path=None):
    """Semantic segmentation of one image by a ClustSeg semantic model (mmseg's
    ``EncoderDecoder`` with a :class:`ClustSegSemanticHead`), as ``mmseg.apis.inference_model``
    but with the test pipeline's annotation loading dropped and files read checked
    (:func:`clustseg.datasets.read_image`).

    Args:
        model: a segmentor from :func:`init_model`.
        img (str | np.ndarray): path (a bad file raises
            :class:`~clustseg.datasets.BadInputError` naming it) or H x W x 3 BGR uint8 array.
        img_path (str, optional): the file an array came from (goes into the metainfo).

    Returns:
        SegDataSample on the CPU, at the original image size: ``pred_sem_seg`` (``data``:
        1 x H x W int64 class ids) and ``seg_logits`` (``data``: K x H x W per-pixel class
        probabilities, see :class:`ClustSegSemanticHead`).
    """
    from clustseg.models.heads import ClustSegSemanticHead
    head = getattr(model, 'decode_head', None)
    if not isinstance(head, ClustSegSemanticHead):
        raise TypeError(f'{type(model).__name__} has no ClustSegSemanticHead '
                        '(model.decode_head): expected a ClustSeg semantic segmentor')
    return _predict(model, img, img_path)


def segmentor_dataset_meta(model):
    """Class names and palette for drawing a semantic model's predictions: the checkpoint's
    ``dataset_meta``, else the ``METAINFO`` of the config's test dataset class (mmseg), else
    numbered classes with a fixed random palette."""
    meta = getattr(model, 'dataset_meta', None)
    if isinstance(meta, dict) and meta.get('classes') and meta.get('palette'):
        return dict(meta)
    num_classes = model.decode_head.num_classes
    from mmseg.registry import DATASETS
    meta = _test_dataset_metainfo(model, DATASETS)
    if len(meta.get('classes', ())) != num_classes or \
            len(meta.get('palette') or ()) != num_classes:
        rng = np.random.RandomState(42)
        meta = dict(classes=tuple(str(i) for i in range(num_classes)),
                    palette=[tuple(int(v) for v in rng.randint(0, 256, 3))
                             for _ in range(num_classes)])
    return meta
