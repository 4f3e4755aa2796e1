"""Pretrained backbone weights load offline, strictly, through each paper config's own init path.

For each of the four backbones a randomly initialised checkpoint is written in the *upstream*
file's layout (torchvision's ResNet state dict; the official Swin release, ``{'model': ...}``
with its key names; MMSegmentation's mmpretrain ConvNeXt file, ``{'state_dict': ...}``), under
the name the offline switch looks for. The config's model is built and initialised with
``CLUSTSEG_OFFLINE_WEIGHTS`` pointing at that folder: no module key may stay unfilled and no
checkpoint key unused (beyond the few each loader declares), and the values must be those
written. A checkpoint that does not fit is an error, not a warning.
"""
import re

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import DefaultScope

from clustseg.registry import MODELS
from clustseg.utils.pretrained import (OFFLINE_ENV, PretrainedKeysError, fetch_remote,
                                       local_file_name, resolve_url)

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
C = ROOT / 'configs'
PAPER = {
    'r50': [C / 'panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py',
            C / 'instance/clustseg_r50_8xb2-lsj-50e_coco.py',
            C / 'semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py',
            C / 'semantic/clustseg_r50_8xb2-80k_coco-stuff164k-640x640.py',
            C / 'superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py'],
    'r101': [C / 'panoptic/clustseg_r101_8xb2-lsj-50e_coco-panoptic.py',
             C / 'instance/clustseg_r101_8xb2-lsj-50e_coco.py'],
    'swin-b': [C / 'panoptic/clustseg_swin-b_8xb2-lsj-50e_coco-panoptic.py',
               C / 'instance/clustseg_swin-b_8xb2-lsj-50e_coco.py',
               C / 'semantic/clustseg_swin-b_8xb2-100e_ade20k-640x640.py',
               C / 'superpixel/clustseg_swin-b_8xb16-300k_bsds500-superpixel.py'],
    'convnext-b': [C / 'panoptic/clustseg_convnext-b_8xb2-lsj-50e_coco-panoptic.py',
                   C / 'instance/clustseg_convnext-b_8xb2-lsj-50e_coco.py',
                   C / 'semantic/clustseg_convnext-b_8xb2-100e_ade20k-640x640.py'],
}


def _backbone(path, monkeypatch, folder):
    monkeypatch.setenv(OFFLINE_ENV, str(folder))
    cfg = Config.fromfile(str(path))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    return cfg, model.backbone


def _assert_values(backbone, expected):
    state = backbone.state_dict()
    for key, value in expected.items():
        assert torch.equal(state[key], value), key


def test_config_names_are_the_upstream_ones():
    names = {n: Config.fromfile(str(p[0])).model.backbone.init_cfg.checkpoint
             for n, p in PAPER.items()}
    assert names['r50'] == 'torchvision://resnet50'
    assert names['r101'] == 'torchvision://resnet101'
    assert names['swin-b'] == ('https://github.com/SwinTransformer/storage/releases/download/'
                               'v1.0.0/swin_base_patch4_window12_384_22k.pth')
    assert names['convnext-b'] == (
        'https://download.openmmlab.com/mmclassification/v0/convnext/downstream/'
        'convnext-base_3rdparty_in21k_20220301-262fd037.pth')
    for group in PAPER.values():  # every paper config starts from those weights
        for path in group:
            bb = Config.fromfile(str(path)).model.backbone
            assert bb.init_cfg.checkpoint in names.values(), path.name
    assert local_file_name('torchvision://resnet50') == 'resnet50-0676ba61.pth'
    assert resolve_url('torchvision://resnet50').startswith('https://download.pytorch.org/')


@pytest.mark.parametrize('name', ['r50', 'r101'])
def test_resnet_torchvision_layout(name, upstream_weights, monkeypatch):
    folder, files = upstream_weights
    written = files[name]
    for path in PAPER[name]:
        cfg, bb = _backbone(path, monkeypatch, folder)
        bb.init_weights()
        # every backbone key comes from the file; torchvision's classifier is the only rest
        assert set(bb.state_dict()) - {k for k in bb.state_dict()
                                       if k.endswith('num_batches_tracked')} <= set(written)
        assert sorted(set(written) - set(bb.state_dict())) == ['fc.bias', 'fc.weight']
        _assert_values(bb, {k: v for k, v in written.items() if not k.startswith('fc.')})


def test_swin_official_layout(upstream_weights, monkeypatch):
    folder, files = upstream_weights
    written = files['swin-b']['model']
    for path in PAPER['swin-b']:
        cfg, bb = _backbone(path, monkeypatch, folder)
        assert bb.convert_weights and type(bb).__name__ == 'StrictSwinTransformer'
        bb.init_weights()
        state = bb.state_dict()
        n_loaded = 0
        for key, value in written.items():  # the official names, mapped by hand here
            if key.startswith(('head.', 'norm.')) or key.endswith('attn_mask'):
                continue  # the classifier's parts; attention masks are recomputed
            new = key.replace('layers.', 'stages.', 1).replace('attn.', 'attn.w_msa.')
            new = new.replace('mlp.fc1.', 'ffn.layers.0.0.').replace('mlp.fc2.', 'ffn.layers.1.')
            new = new.replace('patch_embed.proj.', 'patch_embed.projection.')
            if 'downsample' in key:  # mmdet reorders the 2x2 unfold (swin_converter)
                assert state[new].shape == value.shape and not torch.equal(state[new], value)
                assert torch.equal(state[new].sort(-1 if value.dim() == 1 else 1).values,
                                   value.sort(-1 if value.dim() == 1 else 1).values), key
            else:
                assert torch.equal(state[new], value), key
            n_loaded += 1
        # only the 4 per-output norms are new layers
        assert n_loaded == len(state) - 8
        assert sorted(k for k in state if re.match(r'norm\d\.', k)) == \
            [f'norm{i}.{p}' for i in range(4) for p in ('bias', 'weight')]


def test_convnext_mmpretrain_layout(upstream_weights, monkeypatch):
    folder, files = upstream_weights
    written = files['convnext-b']['state_dict']
    for path in PAPER['convnext-b']:
        cfg, bb = _backbone(path, monkeypatch, folder)
        bb.init_weights()
        state = bb.state_dict()
        mapped = 0
        for key, value in written.items():
            m = re.match(r'backbone\.downsample_layers\.(\d)\.(\d)\.(\w+)$', key)
            if m:
                i, j, p = m.groups()
                new = f'stem_{j}.{p}' if i == '0' else f'stages_{i}.downsample.{j}.{p}'
            else:
                m = re.match(r'backbone\.stages\.(\d)\.(\d+)\.(.+)$', key)
                if not m:
                    if key.startswith('backbone.norm3.'):  # the last output norm
                        assert torch.equal(state[key[len('backbone.'):]], value), key
                        mapped += 1
                    else:
                        assert key.startswith('head.'), key
                    continue
                i, j, rest = m.groups()
                rest = {'depthwise_conv': 'conv_dw', 'pointwise_conv1': 'mlp.fc1',
                        'pointwise_conv2': 'mlp.fc2'}.get(rest.rsplit('.', 1)[0],
                                                          rest.rsplit('.', 1)[0]) + \
                    ('.' + rest.rsplit('.', 1)[1] if '.' in rest else '')
                new = f'stages_{i}.blocks.{j}.{rest}'
            assert torch.equal(state['timm_model.' + new], value), key
            mapped += 1
        # every backbone tensor came from the file but the new output norms norm0-norm2
        new = sorted(k for k in state if not k.startswith('timm_model.') and k[4] != '3')
        assert new == [f'norm{i}.{p}' for i in range(3) for p in ('bias', 'weight')]
        assert mapped == len(state) - len(new)
        # the pyramid is timm's stage outputs, each through its channel LayerNorm
        x = torch.randn(1, 3, 64, 64)
        bb.eval()  # no drop path
        with torch.no_grad():
            outs, stages = bb(x), bb.timm_model(x)
        for i, (out, f) in enumerate(zip(outs, stages)):
            ln = torch.nn.functional.layer_norm(
                f.permute(0, 2, 3, 1), f.shape[1:2], state[f'norm{i}.weight'],
                state[f'norm{i}.bias'], eps=1e-6).permute(0, 3, 1, 2)
            torch.testing.assert_close(out, ln)
        assert torch.equal(state['norm0.weight'], torch.ones(128))  # new: LayerNorm's init


def test_swin_official_file_without_conversion_is_an_error(upstream_weights, monkeypatch):
    folder, _ = upstream_weights
    cfg, bb = _backbone(PAPER['swin-b'][0], monkeypatch, folder)
    bb.convert_weights = False  # the old config: mmdet would load nothing, silently
    with pytest.raises(PretrainedKeysError, match='convert_weights=True'):
        bb.init_weights()


def test_missing_and_foreign_keys_are_errors(tmp_path, monkeypatch):
    """A checkpoint lacking one backbone tensor, or carrying one the backbone does not have,
    stops the initialisation with the keys named."""
    name = local_file_name('torchvision://resnet50')
    sd = torchvision.models.resnet50().state_dict()
    for edit, word in ((lambda d: d.pop('layer1.0.conv1.weight'), 'layer1.0.conv1.weight'),
                       (lambda d: d.__setitem__('extra.weight', torch.zeros(1)), 'extra.weight')):
        bad = dict(sd)
        edit(bad)
        torch.save(bad, tmp_path / name)
        cfg, bb = _backbone(PAPER['r50'][0], monkeypatch, tmp_path)
        with pytest.raises(PretrainedKeysError, match=re.escape(word)):
            bb.init_weights()


def test_offline_none_keeps_random_weights_and_never_downloads(monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, 'none')
    for group in PAPER.values():
        cfg = Config.fromfile(str(group[0]))
        with DefaultScope.overwrite_default_scope(cfg.default_scope):
            model = MODELS.build(cfg.model)
        model.backbone.init_weights()  # no network here: a download attempt would fail
    with pytest.raises(FileNotFoundError, match='not downloaded'):
        fetch_remote('torchvision://resnet50')


def test_offline_dir_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv(OFFLINE_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'resnet50-0676ba61.pth'))):
        fetch_remote('torchvision://resnet50')


def test_data_parallel_prefix_is_stripped(tmp_path, monkeypatch):
    """A ResNet file saved from a DataParallel / DDP wrapper (``module.`` keys) loads as
    mmengine's ``Pretrained`` loads it."""
    from mmengine.model.weight_init import initialize
    sd = torchvision.models.resnet50().state_dict()
    torch.save({f'module.{k}': v for k, v in sd.items()}, tmp_path / 'dp.pth')
    from mmdet.models.backbones import ResNet
    bb = ResNet(depth=50)
    initialize(bb, dict(type='Pretrained', checkpoint=str(tmp_path / 'dp.pth'),
                        unused_keys=[r'^fc\.']))
    assert torch.equal(bb.state_dict()['conv1.weight'], sd['conv1.weight'])
