"""Every shipped config parses, builds its model through the registries, runs a forward, and
one training step reaches every trainable parameter (DDP runs with
find_unused_parameters=False)."""
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import DefaultScope

from clustseg.apis import init_model
from clustseg.registry import DATASETS, MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in ROOT.joinpath('configs').rglob('*.py') if '_base_' not in p.parts)
BSDS = ROOT / 'tests' / 'data' / 'bsds500'


def _scope(cfg):
    return DefaultScope.overwrite_default_scope(cfg.default_scope)


@pytest.mark.parametrize('path', CONFIGS, ids=[f'{p.parent.name}/{p.name}' for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(str(path))
    assert cfg.custom_imports['imports'] == ['clustseg']
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'optim_wrapper'):
        assert key in cfg, f'{path.name} lacks {key}'
    assert cfg.default_hooks.checkpoint.type == 'SafeCheckpointHook'
    assert not cfg.get('find_unused_parameters', False)
    if cfg.model.type != 'SuperpixelSegmentor':
        return  # detection configs: built and trained in the test below
    if 'r50' in path.name:  # large: check it builds, skip the forward
        MODELS.build(cfg.model)
        return
    model = init_model(cfg)
    with torch.no_grad():
        out = model.superpixels(torch.randn(1, 3, 64, 80), 30)[0]
    assert out.shape == (64, 80)


def _real_batch(n=2, crop=64):
    """Two real BSDS500 train crops with their first annotator, through the packing of the
    superpixel pipeline."""
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadSuperpixelAnnotations', annotator='first', with_all=False),
        dict(type='CenterCrop', crop_size=(crop, crop)),
        dict(type='PackSuperpixelInputs')])
    paths = sorted((BSDS / 'images' / 'train').glob('*.jpg'))[:n]
    samples = []
    for p in paths:
        gt = BSDS / 'groundTruth' / 'train' / (p.stem + '.mat')
        samples.append(pipeline(dict(img_path=str(p), seg_map_path=str(gt), seg_fields=[])))
    return pseudo_collate(samples)


def _embedded_config(path):
    """The embedded config whose real data (tests/data) trains the config at ``path``."""
    task = next((t for t in ('panoptic', 'semantic') if t in path.parts), 'instance')
    name = 'clustseg_compact_embedded.py'
    if task == 'semantic' and 'ade20k' in path.name:  # 150 ADE20K classes, not COCO-Stuff's
        name = 'clustseg_compact_embedded_ade20k.py'
    return ROOT / 'configs' / task / name


def _real_det_batch(config, n=2, scale=(256, 256)):
    """Two real images of an embedded config's data (tests/data), through its train pipeline
    (resized to a ``scale`` longer side: small enough for the R50 configs on a CPU)."""
    cfg = Config.fromfile(str(config))
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = scale
    with _scope(cfg):
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        return pseudo_collate([ds[i] for i in range(n)])


@pytest.mark.parametrize('path', CONFIGS, ids=[f'{p.parent.name}/{p.name}' for p in CONFIGS])
def test_one_training_step_reaches_every_parameter(path):
    torch.manual_seed(0)
    cfg = Config.fromfile(str(path))
    if cfg.model.get('data_preprocessor', {}).get('batch_augments'):
        cfg.model.data_preprocessor.batch_augments = None  # no 1024 x 1024 padding on a CPU
    with _scope(cfg):
        model = MODELS.build(cfg.model).train()
        batch = _real_batch() if cfg.model.type == 'SuperpixelSegmentor' else \
            _real_det_batch(_embedded_config(path))
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'{path.name}: parameters outside the loss: {missing}'
