"""High-level inference helpers (demo, curve tool, notebooks)."""
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.runner import load_checkpoint

from clustseg.models.segmentors.superpixel_segmentor import TooManySuperpixelsError


def init_model(config, checkpoint=None, device='cpu', cfg_options=None):
    """Builds a model from a config file/Config and optionally loads a checkpoint.

    Returns the model in eval mode with ``model.cfg`` attached.
    """
    from clustseg.registry import MODELS
    from clustseg.utils import register_all_modules
    if isinstance(config, str):
        config = Config.fromfile(config)
    elif not isinstance(config, Config):
        raise TypeError(f'config must be a path or a Config, got {type(config)}')
    if cfg_options:
        config.merge_from_dict(cfg_options)
    register_all_modules(scope=config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.cfg = config
    return model.to(device).eval()


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
def inference_superpixel(model, img, num_superpixels=None, img_path=None):
    """Superpixels of one image.

    Args:
        model: a :class:`SuperpixelSegmentor` from :func:`init_model`.
        img (str | np.ndarray): path (read checked, see :class:`LoadImageChecked`; a bad file
            raises :class:`~clustseg.datasets.BadInputError` naming it) or H x W x 3 BGR
            uint8 array.
        num_superpixels (int, optional): K (default ``model.test_cfg.num_superpixels``).
        img_path (str, optional): the file an array came from; it goes into the sample's
            metainfo (``img_path``) so that errors can name it.

    Returns:
        np.ndarray: H x W int64 labels 0..n-1 (after the connectivity step).
    """
    if isinstance(img, str):
        results = dict(img_path=img)
    elif isinstance(img, np.ndarray) and img.ndim == 3 and img.shape[2] == 3:
        results = dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2])
        if img_path is not None:
            results['img_path'] = str(img_path)
    else:
        raise ValueError('img must be a file path or an H x W x 3 BGR uint8 array')
    data = _test_pipeline(model.cfg, from_array='img' in results)(results)
    batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                         data_samples=[data['data_samples']]), False)
    try:
        return model.superpixels(batch['inputs'], num_superpixels)[0]
    except TooManySuperpixelsError as e:  # say which image is too small for K
        name = results.get('img_path', 'the input array')
        raise TooManySuperpixelsError(f'{name}: {e}', e.max_k) from None
