"""Every shipped config parses, builds its model through the registries, runs a forward, and
one training step reaches every trainable parameter (DDP runs with
find_unused_parameters=False). The paper configs (Tables 1-3, superpixels) start from
checkpoints in their upstream files' layouts (offline switch) and train two optimizer steps
with their own optimizer and parameter groups."""
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from clustseg.apis import init_model
from clustseg.registry import DATASETS, MODELS
from clustseg.utils.pretrained import OFFLINE_ENV

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]
CONFIGS = sorted(p for p in ROOT.joinpath('configs').rglob('*.py') if '_base_' not in p.parts)
BSDS = ROOT / 'tests' / 'data' / 'bsds500'
PAPER = [ROOT / 'configs' / p for p in (
    'panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py',
    'panoptic/clustseg_r101_8xb2-lsj-50e_coco-panoptic.py',
    'panoptic/clustseg_swin-b_8xb2-lsj-50e_coco-panoptic.py',
    'panoptic/clustseg_convnext-b_8xb2-lsj-50e_coco-panoptic.py',
    'instance/clustseg_r50_8xb2-lsj-50e_coco.py',
    'instance/clustseg_r101_8xb2-lsj-50e_coco.py',
    'instance/clustseg_swin-b_8xb2-lsj-50e_coco.py',
    'instance/clustseg_convnext-b_8xb2-lsj-50e_coco.py',
    'semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py',
    'semantic/clustseg_r50_8xb2-80k_coco-stuff164k-640x640.py',
    'semantic/clustseg_swin-b_8xb2-100e_ade20k-640x640.py',
    'semantic/clustseg_convnext-b_8xb2-100e_ade20k-640x640.py',
    'superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py',
    'superpixel/clustseg_swin-b_8xb16-300k_bsds500-superpixel.py')]


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


def _real_det_batch(config, n=2, scale=(256, 256), data_root=None):
    """Two real images of an embedded config's data (tests/data), through its train pipeline
    (resized to a ``scale`` longer side: small enough for the R50 configs on a CPU); with
    ``data_root``, of the config's own dataset read from there."""
    cfg = Config.fromfile(str(config))
    dataset = cfg.train_dataloader.dataset
    if data_root is not None:
        dataset.data_root = str(data_root)
    for t in dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = scale
    with _scope(cfg):
        ds = DATASETS.build(dataset)
        return pseudo_collate([ds[i] for i in range(n)])


#: data roots of the held-out benchmark configs, read from the converted committed samples
HELDOUT_ROOTS = ('data/camvid', 'data/coco128')


def _model_and_batch(path, heldout_data=None):
    cfg = Config.fromfile(str(path))
    if cfg.model.get('data_preprocessor', {}).get('batch_augments'):
        cfg.model.data_preprocessor.batch_augments = None  # no 1024 x 1024 padding on a CPU
    root = cfg.train_dataloader.dataset.get('data_root', '').rstrip('/')
    with _scope(cfg):
        model = MODELS.build(cfg.model).train()
        if cfg.model.type == 'SuperpixelSegmentor':
            batch = _real_batch()
        elif root in HELDOUT_ROOTS:
            batch = _real_det_batch(path, data_root=heldout_data / root)
        else:
            batch = _real_det_batch(_embedded_config(path))
    return cfg, model, batch


def _assert_every_parameter_has_a_gradient(model, path):
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f'{path.name}: parameters outside the loss: {missing}'


# panoptic ablation configs that repeat another's structure with other numbers (T, test-time
# round, lr, supervision subset): their one-step test runs with --runslow; each row's defining
# property is tested in tests/test_models/test_ablation_configs.py
NUMERIC_VARIANTS = {'clustseg_r50_T2_coco-panoptic.py', 'clustseg_r50_T4_coco-panoptic.py',
                    'clustseg_r50_T5_coco-panoptic.py', 'clustseg_r50_T6_coco-panoptic.py',
                    'clustseg_r50_unshared-T3_coco-panoptic.py',
                    'clustseg_r50_unshared-T4_coco-panoptic.py',
                    'clustseg_r50_unshared-T5_coco-panoptic.py',
                    'clustseg_r50_learned-queries-T4_coco-panoptic.py',
                    'clustseg_r50_learned-queries-T5_coco-panoptic.py',
                    'clustseg_r50_learned-queries-T6_coco-panoptic.py',
                    'clustseg_r50_test-iter1_coco-panoptic.py',
                    'clustseg_r50_test-iter2_coco-panoptic.py',
                    'clustseg_r50_sup-output-only_coco-panoptic.py',
                    'clustseg_r50_lr1e-5-all_coco-panoptic.py'}
# paper configs on another test split (COCO test-dev): the same model and training as their
# paper config, which tests/test_tools/test_coco_test_dev.py checks
TEST_SPLIT_VARIANTS = {p for p in CONFIGS if p.name.endswith('_test-dev.py')}
ONE_STEP = [pytest.param(p, marks=pytest.mark.slow) if p.name in NUMERIC_VARIANTS else p
            for p in CONFIGS if p not in PAPER and p not in TEST_SPLIT_VARIANTS]


@pytest.mark.parametrize('path', ONE_STEP,
                         ids=[f'{getattr(p, "values", [p])[0].parent.name}/'
                              f'{getattr(p, "values", [p])[0].name}' for p in ONE_STEP])
def test_one_training_step_reaches_every_parameter(path, heldout_data):
    torch.manual_seed(0)
    cfg, model, batch = _model_and_batch(path, heldout_data)
    with _scope(cfg):
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
    loss, _ = model.parse_losses(losses)
    assert torch.isfinite(loss)
    loss.backward()
    _assert_every_parameter_has_a_gradient(model, path)


@pytest.mark.parametrize('path', PAPER, ids=[f'{p.parent.name}/{p.name}' for p in PAPER])
def test_paper_config_trains_two_steps_from_pretrained_weights(path, upstream_weights,
                                                                monkeypatch):
    """The config's own init path loads an upstream-layout checkpoint (offline switch at the
    folder of the `upstream_weights` fixture), then two steps of its optimizer (parameter
    groups, clipping) train every trainable parameter; frozen backbone norms stay as loaded."""
    folder, _ = upstream_weights
    monkeypatch.setenv(OFFLINE_ENV, str(folder))
    torch.manual_seed(0)
    cfg, model, batch = _model_and_batch(path)
    model.init_weights()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    with _scope(cfg):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        for step in range(2):
            data = model.data_preprocessor(batch, True)
            loss, _ = model.parse_losses(model(**data, mode='loss'))
            assert torch.isfinite(loss), (path.name, step)
            wrapper.backward(loss)
            if step == 0:
                _assert_every_parameter_has_a_gradient(model, path)
            wrapper.step()
            wrapper.zero_grad()
    params = dict(model.named_parameters())
    moved = [n for n, v in before.items() if not torch.equal(params[n], v)]
    assert len(moved) > 0.9 * len(before), f'{path.name}: {len(moved)} / {len(before)} moved'
    for n, v in frozen.items():
        assert torch.equal(params[n], v), n


#: where the batch-padding test reads real samples of COCO panoptic / instance (tests/data)
COCO_SAMPLES = {
    'panoptic': dict(
        data_root=str(ROOT / 'tests/data/coco_panoptic') + '/',
        ann_file='annotations/panoptic_val2017.json',
        data_prefix=dict(img='val2017/', seg='annotations/panoptic_val2017/')),
    'instance': dict(data_root=str(ROOT / 'tests/data/coco_instance') + '/',
                        ann_file='annotations/instances_val2017.json',
                        data_prefix=dict(img='val2017/')),
}


def test_batch_padding_of_every_config_on_images_smaller_than_the_crop():
    """The training batch augments the other tests switch off (mmdet's BatchFixedSizePad to
    the 1024 x 1024 LSJ crop), run by each config's own data preprocessor on real samples of
    its own train pipeline, scaled small so that every image needs padding: images, instance
    masks and (panoptic) semantic maps come out at the crop size. The instance configs padded
    a semantic map their samples do not have, an AttributeError on the first small batch."""
    import json
    seen = {}
    for path in CONFIGS:
        cfg = Config.fromfile(str(path))
        augments = cfg.model.get('data_preprocessor', {}).get('batch_augments')
        if not augments:
            continue
        dataset = cfg.train_dataloader.dataset
        assert dataset.type in ('ClustSegCocoPanopticDataset', 'CocoPanopticDataset',
                                'ClustSegCocoDataset'), f'{path.name}: {dataset.type}'
        for t in dataset.pipeline:
            if t['type'] == 'RandomResize':
                t['ratio_range'] = (0.1, 0.12)  # about 110 px: far below the crop
        key = json.dumps([cfg.model.data_preprocessor.to_dict(), dataset.type,
                          [dict(t) for t in dataset.pipeline]], sort_keys=True, default=str)
        seen.setdefault(key, (path, cfg))
    assert len(seen) >= 2, 'expected the panoptic and the instance preprocessors at least'
    for path, cfg in seen.values():
        dataset = cfg.train_dataloader.dataset
        panoptic = 'Panoptic' in dataset.type
        dataset.update(COCO_SAMPLES['panoptic' if panoptic else 'instance'])
        (size, ) = {tuple(a['size']) for a in cfg.model.data_preprocessor.batch_augments}
        with _scope(cfg):
            torch.manual_seed(0)
            ds = DATASETS.build(dataset)
            batch = pseudo_collate([ds[i] for i in range(2)])
            assert all(max(s.img_shape) < min(size) for s in batch['data_samples'])
            out = MODELS.build(cfg.model.data_preprocessor)(batch, True)
        assert out['inputs'].shape[-2:] == size, path.name
        for s in out['data_samples']:
            assert s.batch_input_shape == size and s.gt_instances.masks.masks.shape[-2:] == size
            if 'gt_sem_seg' in s:
                assert s.gt_sem_seg.sem_seg.shape[-2:] == size
        assert any('gt_sem_seg' in s for s in out['data_samples']) == panoptic, path.name
