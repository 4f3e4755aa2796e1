"""Pretrained backbone weights: remote names, the offline switch, and strict loading.

Configs name pretrained weights as OpenMMLab configs do (``torchvision://resnet50``, the
official Swin / ConvNeXt URLs). On a user's machine they are downloaded once into torch's hub
cache (``$TORCH_HOME/checkpoints``) and read with :func:`load_from_checked_file`, i.e.
``torch.load(weights_only=True)`` with the mmengine allow-list: a remote file that pickles code
is refused like a local one.

**The offline switch** is the environment variable ``CLUSTSEG_OFFLINE_WEIGHTS``
(:data:`OFFLINE_ENV`):

* unset or empty: remote names are downloaded (the default, for users with internet); a
  failed download is a :class:`DownloadError` naming the URL and this switch;
* ``none``: pretrained initialisation is skipped (the backbone keeps its random
  initialisation; a warning names each skipped source), and any other remote checkpoint
  (``load_from``, ``tools/test.py URL``) is an error instead of a download. CI, the tests and
  the main job run this way;
* a directory: every remote name is read from that directory instead, as the file named by
  the last part of its URL (``torchvision://resnet50`` -> ``resnet50-0676ba61.pth``, the file
  torchvision's weights enum names; :func:`local_file_name` gives it). A missing file is an
  error naming the path it looked for.

**Strict loading.** mmengine's ``Pretrained`` initializer loads with ``strict=False`` and only
logs the keys it skipped. :class:`StrictPretrainedInit` replaces it (registered under the same
name, so configs keep OpenMMLab's ``init_cfg=dict(type='Pretrained', checkpoint=...)``): after
an optional key converter (``converter=``, see :data:`CONVERTERS`) and after dropping the
checkpoint keys a config declares unused (``unused_keys=`` regexes, e.g. torchvision's
classifier ``fc``), every module key must be loaded and every checkpoint key used, or
:class:`PretrainedKeysError` names them.
"""
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlparse

import torch
from mmengine.dist import get_dist_info
from mmengine.logging import print_log
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.registry import WEIGHT_INITIALIZERS
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint import load_from_checked_file

OFFLINE_ENV = 'CLUSTSEG_OFFLINE_WEIGHTS'
REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'modelzoo://', 'open-mmlab://',
                   'openmmlab://', 'mmcls://')


class PretrainedKeysError(KeyError):
    """A pretrained checkpoint whose keys do not match the module; the message names them."""

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0])


class DownloadError(OSError):
    """A remote checkpoint that could not be downloaded; names the URL, the target path and
    the offline switch."""


def offline_mode() -> Tuple[str, Optional[str]]:
    """('online', None) | ('none', None) | ('dir', DIR) from :data:`OFFLINE_ENV`."""
    value = os.environ.get(OFFLINE_ENV, '').strip()
    if not value:
        return 'online', None
    if value.lower() == 'none':
        return 'none', None
    if not osp.isdir(value):
        raise FileNotFoundError(f'{OFFLINE_ENV}={value!r} is neither "none" nor an existing '
                                'directory of checkpoint files')
    return 'dir', value


def is_remote(name: str) -> bool:
    return isinstance(name, str) and name.startswith(REMOTE_PREFIXES)


def resolve_url(name: str) -> str:
    """A remote checkpoint name -> its http(s) URL (``torchvision://`` through torchvision's
    weights enums, ``open-mmlab://`` through mmengine's model list, its deprecated names
    through mmengine's renames, ``mmcls://`` through mmengine's mmcls list)."""
    from mmengine.runner.checkpoint import (get_deprecated_model_names, get_external_models,
                                            get_mmcls_models, get_torchvision_models)
    for prefix, table in (('torchvision://', get_torchvision_models),
                          ('modelzoo://', get_torchvision_models),
                          ('open-mmlab://', get_external_models),
                          ('openmmlab://', get_external_models),
                          ('mmcls://', get_mmcls_models)):
        if name.startswith(prefix):
            key = name[len(prefix):]
            urls = table()
            if prefix in ('open-mmlab://', 'openmmlab://'):
                key = get_deprecated_model_names().get(key, key)
            if key not in urls:
                raise KeyError(f'{name}: unknown model name {key!r} for {prefix}')
            url = urls[key]
            if not url.startswith(('http://', 'https://')):
                raise ValueError(f'{name}: mmengine lists it as {url!r}, not a URL: give the '
                                 'local file instead')
            return url
    if name.startswith(('http://', 'https://')):
        return name
    raise ValueError(f'{name} is not a remote checkpoint name (prefixes {REMOTE_PREFIXES})')


def local_file_name(name: str) -> str:
    """The file a remote checkpoint name is read from: the last part of its URL."""
    return osp.basename(urlparse(resolve_url(name)).path)


def _download(url: str) -> str:
    """``url`` in torch's hub cache (downloaded once; rank 0 first under DDP)."""
    model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    path = osp.join(model_dir, osp.basename(urlparse(url).path))
    rank, world_size = get_dist_info()
    for turn in ((0, ), range(1, world_size)) if world_size > 1 else ((0, ), ):
        if rank in turn and not osp.isfile(path):
            os.makedirs(model_dir, exist_ok=True)
            print_log(f'downloading {url} to {path}', logger='current')
            try:
                torch.hub.download_url_to_file(url, path, progress=False)
            except OSError as err:  # URLError, HTTPError, socket errors
                raise DownloadError(
                    f'could not download {url} to {path}: {err}. Without internet, set '
                    f'{OFFLINE_ENV}=none (skip pretrained initialisation) or '
                    f'{OFFLINE_ENV}=DIR (read {osp.basename(path)} from DIR)') from err
        if world_size > 1:
            torch.distributed.barrier()
    return path


def fetch_remote(name: str) -> str:
    """The local path of a remote checkpoint name, following the offline switch."""
    mode, folder = offline_mode()
    if mode == 'none':
        raise FileNotFoundError(f'{OFFLINE_ENV}=none: the remote checkpoint {name} is not '
                                f'downloaded; give a local path or set {OFFLINE_ENV} to a '
                                f'directory holding {local_file_name(name)}')
    if mode == 'dir':
        path = osp.join(folder, local_file_name(name))
        if not osp.isfile(path):
            raise FileNotFoundError(f'{OFFLINE_ENV}={folder}: {name} is read from {path}, '
                                    'which does not exist')
        return path
    return _download(resolve_url(name))


def load_from_remote(filename: str, map_location=None):
    """mmengine's loader of remote names: the local copy, loaded weights-only (an
    ``mmcls://`` classifier's backbone keys unprefixed, as mmengine's own loader gives them).
    Named ``load_from_*`` as mmengine's loaders: its log prints the name from the 11th
    character as the backend."""
    from mmengine.runner.checkpoint import _process_mmcls_checkpoint
    ckpt = load_from_checked_file(fetch_remote(filename), map_location=map_location)
    return _process_mmcls_checkpoint(ckpt) if filename.startswith('mmcls://') else ckpt


def enable_safe_remote_loading() -> None:
    """Make :func:`load_from_remote` mmengine's loader of every remote prefix
    (``load_from``, ``--resume``, ``tools/test.py``, ``Pretrained`` and the backbones' own
    loaders all go through ``CheckpointLoader``). Idempotent."""
    CheckpointLoader.register_scheme(prefixes=REMOTE_PREFIXES, loader=load_from_remote,
                                     force=True)


def skip_pretrained(checkpoint: str) -> bool:
    """True (with a warning naming the source) when the offline switch is ``none`` and
    ``checkpoint`` is remote: the caller keeps its random initialisation."""
    if is_remote(checkpoint) and offline_mode()[0] == 'none':
        print_log(f'{OFFLINE_ENV}=none: pretrained weights {checkpoint} not loaded, the '
                  'backbone keeps its random initialisation', logger='current', level=30)
        return True
    return False


# --------------------------------------------------------------------------- key checks
def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(re.search(p, key) for p in patterns)


def check_loaded_keys(source: str, missing: List[str], unexpected: List[str],
                      new_keys: Iterable[str] = (), unused_keys: Iterable[str] = ()) -> None:
    """Raise :class:`PretrainedKeysError` unless every missing module key matches a
    ``new_keys`` regex (layers the pretrained model never had) and every unexpected checkpoint
    key matches an ``unused_keys`` regex (parts the backbone does not have)."""
    missing = [k for k in missing if not _matches(k, new_keys)]
    unexpected = [k for k in unexpected if not _matches(k, unused_keys)]
    if missing or unexpected:
        raise PretrainedKeysError(
            f'pretrained weights {source} do not match the backbone: ' +
            describe_key_mismatch(missing, unexpected) +
            '. Check the checkpoint against the config (converter / convert_weights), or list '
            'module keys that the file is not meant to fill in init_cfg.new_keys and file keys '
            'that are meant to stay unused in init_cfg.unused_keys.')


def describe_key_mismatch(missing: List[str], unexpected: List[str],
                          mismatched: List[str] = (), limit: int = 8) -> str:
    """One text for the keys of a state dict that do not fit a module: its ``missing`` keys,
    the checkpoint's ``unexpected`` ones and ``mismatched`` (``'key: checkpoint shape vs
    module shape'``), each with its count and the first ``limit``."""
    def show(keys):
        keys = list(keys)
        return ', '.join(keys[:limit]) + (f' (+{len(keys) - limit} more)'
                                          if len(keys) > limit else '')
    parts = []
    if missing:
        parts.append(f'{len(missing)} module keys not in the checkpoint: {show(missing)}')
    if unexpected:
        parts.append(f'{len(unexpected)} checkpoint keys the module does not have: '
                     f'{show(unexpected)}')
    if mismatched:
        parts.append(f'{len(mismatched)} keys of another shape: {show(mismatched)}')
    return '; '.join(parts)


def state_dict_mismatch(module_state: Dict[str, torch.Tensor],
                        ckpt_state: Dict[str, torch.Tensor]
                        ) -> Tuple[List[str], List[str], List[str]]:
    """(missing, unexpected, mismatched) keys of ``ckpt_state`` loaded into a module whose
    ``state_dict()`` is ``module_state``; ``mismatched`` as ``'key: [ckpt shape] vs [module
    shape]'`` for tensors of another shape."""
    missing = [k for k in module_state if k not in ckpt_state]
    unexpected = [k for k in ckpt_state if k not in module_state]
    mismatched = []
    for k, v in ckpt_state.items():
        if k in module_state and hasattr(v, 'shape') and \
                tuple(v.shape) != tuple(module_state[k].shape):
            mismatched.append(f'{k}: {list(v.shape)} in the checkpoint vs '
                              f'{list(module_state[k].shape)} in the model')
    return missing, unexpected, mismatched


def strip_state_dict(ckpt) -> Dict[str, torch.Tensor]:
    """A loaded checkpoint -> its flat state dict (``state_dict`` / ``model`` / itself)."""
    if not isinstance(ckpt, dict):
        raise TypeError(f'a checkpoint must be a dict, got {type(ckpt).__name__}')
    for key in ('state_dict', 'model'):
        if key in ckpt and isinstance(ckpt[key], dict):
            return ckpt[key]
    return ckpt


# --------------------------------------------------------------------------- converters
_CONVNEXT_BLOCK = (('depthwise_conv.', 'conv_dw.'), ('pointwise_conv1.', 'mlp.fc1.'),
                   ('pointwise_conv2.', 'mlp.fc2.'))


def mmpretrain_convnext_to_timm_features(state_dict: Dict[str, torch.Tensor]
                                         ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """An mmpretrain ConvNeXt classifier checkpoint (the files mmseg / mmdet ConvNeXt configs
    name: ``backbone.downsample_layers.{i}.{0,1}``, ``backbone.stages.{i}.{j}.{depthwise_conv,
    norm, pointwise_conv1, pointwise_conv2, gamma}``, ``backbone.norm3``, ``head.fc``) -> the
    keys of mmseg's ``TIMMBackbone`` around timm's ``convnext_*`` with ``features_only=True``
    (``timm_model.stem_{0,1}``, ``timm_model.stages_{i}.downsample.{0,1}``,
    ``timm_model.stages_{i}.blocks.{j}.{conv_dw, norm, mlp.fc1, mlp.fc2, gamma}``), the
    classifier's final norm ``backbone.norm3`` -> :class:`ConvNeXtFeatures`' last output norm
    ``norm3`` (as mmpretrain's ``ConvNeXt(gap_before_final_norm=False)`` loads it).

    Returns (converted state dict, the checkpoint keys left out: the classifier's head, which
    a feature backbone does not have)."""
    out, unused = OrderedDict(), []
    for key, value in state_dict.items():
        k = key[len('backbone.'):] if key.startswith('backbone.') else key
        m = re.match(r'downsample_layers\.(\d+)\.(\d+)\.(.+)$', k)
        if m:
            i, j, rest = m.groups()
            new = f'stem_{j}.{rest}' if i == '0' else f'stages_{i}.downsample.{j}.{rest}'
            out[f'timm_model.{new}'] = value
            continue
        m = re.match(r'stages\.(\d+)\.(\d+)\.(.+)$', k)
        if m:
            i, j, rest = m.groups()
            for old, new in _CONVNEXT_BLOCK:
                if rest.startswith(old):
                    rest = new + rest[len(old):]
                    break
            out[f'timm_model.stages_{i}.blocks.{j}.{rest}'] = value
            continue
        if re.match(r'norm[0-3]\.', k):  # output norms (norm3: the classifier's final one)
            out[k] = value
        elif key.startswith('head.'):
            unused.append(key)  # the classifier's head
        else:
            out[key] = value  # unknown: left for the key check to report
    return out, unused


#: Key converters selectable with ``init_cfg=dict(type='Pretrained', converter=NAME)``.
CONVERTERS: Dict[str, Callable] = {
    'mmpretrain_convnext_to_timm_features': mmpretrain_convnext_to_timm_features,
}


@WEIGHT_INITIALIZERS.register_module(name='Pretrained', force=True)
class StrictPretrainedInit(PretrainedInit):
    """mmengine's ``Pretrained`` initializer, loading strictly through the offline switch.

    Args:
        checkpoint (str): local path or remote name (``torchvision://``, ``http(s)://``, ...).
        prefix (str, optional): load only the checkpoint keys under this prefix (stripped), as
            mmengine does.
        map_location: as ``torch.load``.
        converter (str, optional): a key of :data:`CONVERTERS`, applied to the state dict.
        unused_keys (list[str]): regexes of checkpoint keys that are meant to stay unused
            (e.g. ``'^fc\\.'``, torchvision's classifier).
        new_keys (list[str]): regexes of module keys the checkpoint is not meant to fill
            (layers the pretrained model never had, e.g. ConvNeXt's output norms ``norm0``-
            ``norm2``). Any other key mismatch is an error.
    """

    def __init__(self, checkpoint, prefix=None, map_location='cpu', converter=None,
                 unused_keys=(), new_keys=()):
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        if converter is not None and converter not in CONVERTERS:
            raise KeyError(f'init_cfg.converter={converter!r} is unknown; known converters: '
                           f'{sorted(CONVERTERS)}')
        self.converter = converter
        self.unused_keys = tuple(unused_keys)
        self.new_keys = tuple(new_keys)

    def __call__(self, module):
        if skip_pretrained(self.checkpoint):
            return
        print_log(f'load pretrained weights from {self.checkpoint}', logger='current')
        state_dict = strip_state_dict(
            CheckpointLoader.load_checkpoint(self.checkpoint, map_location=self.map_location))
        # DataParallel / DDP saves: their keys without ``module.``, as mmengine's loader
        state_dict = OrderedDict((re.sub(r'^module\.', '', k), v) for k, v in state_dict.items())
        if self.prefix is not None:
            p = self.prefix
            state_dict = OrderedDict((k[len(p):], v) for k, v in state_dict.items()
                                     if k.startswith(p))
            if not state_dict:
                raise PretrainedKeysError(f'pretrained weights {self.checkpoint} have no key '
                                          f'under prefix {p!r}')
        dropped = []
        if self.converter is not None:
            state_dict, dropped = CONVERTERS[self.converter](state_dict)
        result = module.load_state_dict(state_dict, strict=False)
        check_loaded_keys(self.checkpoint, result.missing_keys,
                          list(result.unexpected_keys) + list(dropped), new_keys=self.new_keys,
                          unused_keys=self.unused_keys +
                          tuple(f'^{re.escape(k)}$' for k in dropped))
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())
