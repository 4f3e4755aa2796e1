"""A model that does not fit its checkpoint or its dataset is an error naming the keys:
tools/test.py with another task's checkpoint, shape-mismatched heads, ``--partial-load``;
class counts of the config against the dataset's metainfo before a run starts."""
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from clustseg.engine import ModelCheckError, ModelCheckHook, register_model_checks
from clustseg.engine.hooks.model_check_hook import checkpoint_problem
from clustseg.registry import MODELS
from clustseg.utils import load_from_checked_file

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
SUPERPIXEL_CKPT = (ROOT / 'clustseg' / 'weights' /
                   'clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.pth')
PANOPTIC = ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'
SEMANTIC = ROOT / 'configs' / 'semantic' / 'clustseg_compact_embedded.py'


def _model(config, **cfg_options):
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(cfg_options)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


def test_another_tasks_checkpoint_stops_tools_test(tmp_path):
    """A superpixel checkpoint into the panoptic config: before, mmengine logged the keys and
    the evaluation exited 0 with PQ 0."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'test.py'), str(PANOPTIC), str(SUPERPIXEL_CKPT),
         '--work-dir', str(tmp_path / 'work')],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0, log[-3000:]
    assert 'ModelCheckError' in log and f'checkpoint {SUPERPIXEL_CKPT} does not fit' in log
    assert 'module keys not in the checkpoint: panoptic_head.core.pixel_decoder.' in log
    assert 'checkpoint keys the module does not have: core.pixel_decoder.' in log
    assert '--partial-load' in log
    assert 'Epoch(test)' not in log  # stopped before any inference


def _fake_runner(model, load_from='x.pth'):
    return SimpleNamespace(model=model, _load_from=load_from)


def test_shape_mismatch_and_partial_load(log_messages):
    model = _model(SEMANTIC)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k, v in state.items() if k.startswith('decode_head') and v.dim() == 2)
    good = dict(state_dict=state, meta={})
    hook = ModelCheckHook()
    hook.after_load_checkpoint(_fake_runner(model), good)  # fits: nothing raised
    # a wrapper's 'module.' prefix is dropped, as the Runner does
    hook.after_load_checkpoint(_fake_runner(model), {f'module.{k}': v for k, v in state.items()})
    shape = list(state[key].shape)
    bad = dict(state)
    bad[key] = torch.zeros(shape[0] + 1, shape[1])
    with pytest.raises(ModelCheckError) as info:
        hook.after_load_checkpoint(_fake_runner(model, 'sem.pth'), dict(state_dict=bad))
    msg = str(info.value)
    assert msg.startswith('checkpoint sem.pth does not fit the model EncoderDecoder: ')
    assert (f'1 keys of another shape: {key}: {[shape[0] + 1, shape[1]]} in the checkpoint vs '
            f'{shape} in the model') in msg
    missing = dict(state)
    del missing[key]
    missing['decode_head.extra.weight'] = torch.zeros(1)
    with pytest.raises(ModelCheckError, match=rf'1 module keys not in the checkpoint: '
                       rf'{key}; 1 checkpoint keys the module does not have: '
                       r'decode_head\.extra\.weight'):
        hook.after_load_checkpoint(_fake_runner(model), missing)
    partial = ModelCheckHook(allow_partial_load=True)
    partial.after_load_checkpoint(_fake_runner(model, 'sem.pth'), dict(state_dict=bad))
    assert any('partial load' in m and key in m for m in log_messages)


def test_shipped_checkpoint_fits_its_config():
    model = _model(ROOT / 'configs' / 'superpixel' /
                   'clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py')
    assert checkpoint_problem(model, load_from_checked_file(str(SUPERPIXEL_CKPT))) is None


def _runner(config, tmp_path, **cfg_options):
    cfg = Config.fromfile(str(config))
    cfg.merge_from_dict(cfg_options)
    cfg.work_dir = str(tmp_path / 'work')
    # mmengine names a runner's default scope after the config file and the second it starts:
    # two runners of same-named configs (here the semantic and the panoptic one) started within
    # a second would share the first one's scope
    cfg.experiment_name = f'model_checks_{tmp_path.name}'
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                'val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    runner = Runner.from_cfg(cfg)
    register_model_checks(runner)
    return runner


@pytest.mark.parametrize('config,options,keys', [
    (SEMANTIC, {'model.decode_head.num_classes': 150,
                'model.decode_head.initializer.num_classes': 150},
     [r"model\.decode_head\.num_classes = 150, but the dataset has 171 \(metainfo\['classes'\]\)",
      r'model\.decode_head\.initializer\.num_classes = 150']),
    (PANOPTIC, {'model.panoptic_head.num_stuff_classes': 50,
                'model.panoptic_fusion_head.num_stuff_classes': 50},
     [r"model\.panoptic_head\.num_stuff_classes = 50, but the dataset has 53 "
      r"\(metainfo\['stuff_classes'\]\)", r'model\.panoptic_fusion_head\.num_stuff_classes = 50']),
], ids=['semantic', 'panoptic'])
def test_class_counts_disagreeing_with_the_dataset(config, options, keys, tmp_path):
    runner = _runner(config, tmp_path, **options)
    called = []
    runner.model.test_step = lambda *a, **k: called.append(1)  # no inference may run
    with pytest.raises(ModelCheckError) as info:
        runner.test()
    msg = str(info.value)
    assert msg.startswith('the model config does not fit the classes of the test_dataloader '
                          'dataset')
    for key in keys:
        assert __import__('re').search(key, msg), (key, msg)
    assert not called


def test_instance_class_counts(tmp_path):
    from clustseg.engine.hooks.model_check_hook import class_count_problems
    cfg = Config.fromfile(str(ROOT / 'configs' / 'instance' / 'clustseg_compact_embedded.py'))
    meta = dict(classes=tuple(str(i) for i in range(80)))
    assert class_count_problems(cfg, meta) == []
    problems = class_count_problems(cfg, dict(classes=meta['classes'][:79]))
    assert "model.panoptic_head.num_things_classes = 80, but the dataset has 79 " \
        "(metainfo['classes'])" in problems
    assert class_count_problems(cfg, {}) == []  # no classes (superpixels): nothing to check


def test_every_class_count_key_of_a_panoptic_config_is_checked():
    """Each thing / stuff count of a panoptic config (heads, initializer, the assigner's
    fixed-stuff split) is compared with the dataset's."""
    from clustseg.engine.hooks.model_check_hook import class_count_problems
    cfg = Config.fromfile(str(PANOPTIC))
    things, stuff = tuple(f't{i}' for i in range(80)), tuple(f's{i}' for i in range(53))

    def keys(n_things, n_stuff):
        meta = dict(classes=things[:n_things] + stuff[:n_stuff],
                    thing_classes=things[:n_things], stuff_classes=stuff[:n_stuff])
        return [p.split(' = ')[0] for p in class_count_problems(cfg, meta)]
    assert keys(80, 53) == []
    assert keys(79, 53) == ['model.panoptic_head.num_things_classes',
                            'model.panoptic_fusion_head.num_things_classes',
                            'model.panoptic_head.initializer.stuff_class_offset',
                            'model.train_cfg.assigner.num_things_classes']
    assert keys(80, 52) == ['model.panoptic_head.num_stuff_classes',
                            'model.panoptic_fusion_head.num_stuff_classes',
                            'model.panoptic_head.initializer.stuff_initializer.num_classes']


def test_partial_load_reaches_a_model_check_hook_of_the_config():
    """A config that already registers ModelCheckHook (custom_hooks): ``--partial-load``
    (register_model_checks(..., allow_partial_load=True)) turns it on there instead of adding
    a second, strict hook; without the flag, the config's setting stays."""
    for configured, flag in ((False, True), (True, False), (False, False)):
        hook = ModelCheckHook(allow_partial_load=configured)
        runner = SimpleNamespace(hooks=[hook], register_hook=lambda h: pytest.fail('a 2nd hook'))
        assert register_model_checks(runner, allow_partial_load=flag) is hook
        assert hook.allow_partial_load == (configured or flag)


def test_head_cfg_hidden_by_the_model_cfg(tmp_path):
    """mmdet's MaskFormer merges model.train_cfg / test_cfg over the head's: a head key that
    the model's dict also sets is an error (init_model, and the runner before it runs), not a
    silently ignored setting; a head-only key or the same value passes."""
    from clustseg.apis import init_model
    from clustseg.engine.hooks.model_check_hook import check_head_cfg_overrides
    config = str(ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py')
    with pytest.raises(ModelCheckError, match=r'model\.panoptic_head\.train_cfg\.'
                       r'mask_num_points=123 is replaced by model\.train_cfg\.'
                       r'mask_num_points=2048.*set these keys there'):
        init_model(config, cfg_options={'model.panoptic_head.train_cfg.mask_num_points': 123})
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.panoptic_head.test_cfg.object_mask_thr': 0.11})
    with pytest.raises(ModelCheckError, match=r'test_cfg\.object_mask_thr=0\.11 is replaced '
                       r'by model\.test_cfg\.object_mask_thr=0\.'):
        check_head_cfg_overrides(cfg)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.panoptic_fusion_head.test_cfg.object_mask_thr': 0.11})
    with pytest.raises(ModelCheckError, match=r'model\.panoptic_fusion_head\.test_cfg\.'
                       r'object_mask_thr=0\.11 is replaced'):
        check_head_cfg_overrides(cfg)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict({'model.panoptic_head.train_cfg.mask_num_points': 123,
                         'model.train_cfg': None})
    with pytest.raises(ModelCheckError, match=r'model\.panoptic_head\.train_cfg is dropped: '
                       r'model\.train_cfg is None'):
        check_head_cfg_overrides(cfg)
    # nothing is lost: the same value, a nested key merged key by key, a head-only key
    cfg = Config.fromfile(config)
    nested = cfg.model.train_cfg.assigner.num_things_classes
    recompute = cfg.model.train_cfg.pop('recompute_losses')  # then set on the head only
    cfg.merge_from_dict({'model.panoptic_head.train_cfg.mask_num_points': 2048,
                         'model.panoptic_head.train_cfg.assigner.num_things_classes': nested,
                         'model.panoptic_head.train_cfg.recompute_losses': not recompute})
    check_head_cfg_overrides(cfg)
    cfg.merge_from_dict({'model.panoptic_head.train_cfg.assigner.num_things_classes': 3})
    with pytest.raises(ModelCheckError, match=r'train_cfg\.assigner\.num_things_classes=3 '
                       r'is replaced by model\.train_cfg\.assigner\.num_things_classes='):
        check_head_cfg_overrides(cfg)
    runner = _runner(PANOPTIC, tmp_path, **{
        'model.panoptic_head.test_cfg.object_mask_thr': 0.11})
    with pytest.raises(ModelCheckError, match='object_mask_thr'):
        runner.test()


def test_slide_inference_without_window_names_the_keys(tmp_path):
    """mmseg's slide inference reads test_cfg.crop_size / stride before the head: without
    them the run stops before any image with an error naming the keys (mmseg alone raised an
    AttributeError naming none); with them it runs."""
    from clustseg.apis import init_model
    config = ROOT / 'configs' / 'semantic' / 'clustseg_compact_embedded_ade20k.py'
    with pytest.raises(ModelCheckError, match=r"mode='slide' needs model\.test_cfg\.crop_size "
                       r'and model\.test_cfg\.stride'):
        init_model(str(config), cfg_options={'model.test_cfg.mode': 'slide'})
    runner = _runner(config, tmp_path, **{'model.test_cfg.mode': 'slide',
                                          'model.test_cfg.crop_size': (64, 64)})
    called = []
    runner.model.test_step = lambda *a, **k: called.append(1)
    with pytest.raises(ModelCheckError, match=r'needs model\.test_cfg\.stride \('):
        runner.test()
    assert not called
    init_model(str(config), cfg_options={'model.test_cfg.mode': 'slide',
                                         'model.test_cfg.crop_size': (64, 64),
                                         'model.test_cfg.stride': (48, 48)})


class _RunnerStub:
    """Stands in for mmengine's Runner in tools/train.py and tools/test.py: records the
    hooks those register, runs nothing."""
    made = []

    def __init__(self, cfg):
        self.cfg, self.hooks = cfg, []
        self.test_evaluator = SimpleNamespace(metrics=[])

    @classmethod
    def from_cfg(cls, cfg):
        cls.made.append(cls(cfg))
        return cls.made[-1]

    def register_hook(self, hook, priority=None):
        self.hooks.append(hook)

    def train(self):
        pass

    def test(self):
        return {}


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_partial_load_flag_of_the_tools(tool, load_script, tmp_path, monkeypatch):
    """tools/train.py and tools/test.py hand ``--partial-load`` to the ModelCheckHook they
    register (without it, the hook is strict)."""
    module = load_script(f'tools/{tool}.py', name=f'{tool}_tool_partial')
    monkeypatch.setattr(module, 'Runner', _RunnerStub)
    args = [str(SEMANTIC)] + ([str(SUPERPIXEL_CKPT)] if tool == 'test' else []) + [
        '--work-dir', str(tmp_path)]
    for flag in (False, True):
        _RunnerStub.made.clear()
        module.main(args + (['--partial-load'] if flag else []))
        hooks = [h for h in _RunnerStub.made[0].hooks if isinstance(h, ModelCheckHook)]
        assert len(hooks) == 1 and hooks[0].allow_partial_load is flag


def test_a_clustseg_head_needs_the_class_score_fusion_head():
    """The ClustSeg heads give each class's probability without a no-object column: mmdet's
    MaskFormerFusionHead would read the last class as no-object without an error."""
    from clustseg.apis import init_model
    from clustseg.engine.hooks.model_check_hook import check_fusion_head
    for config in ('panoptic/clustseg_compact_embedded.py',
                   'instance/clustseg_compact_embedded.py'):
        cfg = Config.fromfile(str(ROOT / 'configs' / config))
        check_fusion_head(cfg)
        cfg.model.panoptic_fusion_head.type = 'MaskFormerFusionHead'
        with pytest.raises(ModelCheckError, match=r"model\.panoptic_fusion_head\.type="
                           r"'MaskFormerFusionHead'.*ClassScoreFusionHead"):
            check_fusion_head(cfg)
    with pytest.raises(ModelCheckError, match='panoptic_fusion_head'):
        init_model(str(ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'),
                   cfg_options={'model.panoptic_fusion_head.type': 'MaskFormerFusionHead'})
    # Mask2Former itself keeps mmdet's fusion head
    check_fusion_head(Config.fromfile(
        str(ROOT / 'configs' / 'reference' / 'mask2former_compact_embedded_panoptic.py')))
