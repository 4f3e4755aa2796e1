"""Proof of extension (docs/extending.md): a new query initializer, a new E-step variant and a
new deep-supervision variant, written in one file outside the package and loaded with
``custom_imports``, train one step of a panoptic, a semantic and a superpixel config (no deep
supervision there), every parameter getting a gradient. The file and
the configs are the code blocks of docs/extending.md, so the tutorial is what is tested."""
import re
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from clustseg.registry import DATASETS, MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]
DOC = ROOT / 'docs' / 'extending.md'


def _blocks():
    """{file name: source} of the python blocks of the tutorial (first line ``# name.py``)."""
    out = {}
    for block in re.findall(r'```python\n(.*?)```', DOC.read_text(), re.S):
        first = block.split('\n', 1)[0]
        if re.fullmatch(r'# [\w]+\.py', first):
            out[first[2:]] = block
    return out


@pytest.fixture(scope='module')
def ext_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('ext')
    for name, src in _blocks().items():
        # configs name their _base_ relative to the repository root, as a user's would
        src = src.replace("_base_ = ['configs/", f"_base_ = ['{ROOT}/configs/")
        (d / name).write_text(src)
    sys.path.insert(0, str(d))
    yield d
    sys.path.remove(str(d))


def test_tutorial_has_the_file_and_three_configs():
    assert set(_blocks()) == {'my_clustseg_ext.py', 'panoptic_ext.py', 'semantic_ext.py',
                              'superpixel_ext.py'}


@pytest.mark.parametrize('name', ['panoptic_ext.py', 'semantic_ext.py', 'superpixel_ext.py'])
def test_new_initializer_and_variant_train_one_step(ext_dir, name):
    cfg = Config.fromfile(str(ext_dir / name))  # custom_imports: registers the two classes
    ext = sys.modules['my_clustseg_ext']
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.train()
        # the new classes are the ones built (no fallback to a shipped module)
        inits = [m for m in model.modules() if isinstance(m, ext.PooledGridInitializer)]
        variants = [m for m in model.modules() if isinstance(m, ext.TemperedSoftmax)]
        assert inits and variants
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        torch.manual_seed(0)
        batch = pseudo_collate([ds[0], ds[1]])
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        data = model.data_preprocessor(batch, True)
        losses = model(**data, mode='loss')
        if name != 'superpixel_ext.py':  # only the layers from the second on are supervised
            head = model.panoptic_head if name == 'panoptic_ext.py' else model.decode_head
            assert isinstance(head.deep_supervision, ext.EveryEStepFromLayer)
            # panoptic keys name the level of layers 0, 1, 2 (lv0..lv2), semantic ones the
            # layer and round (l{layer}i{iter})
            first = ('lv0.', 'lv1.') if name == 'panoptic_ext.py' else ('decode.l0', 'decode.l1i0')
            assert not any(k.startswith(first[0]) for k in losses), sorted(losses)
            assert any(k.startswith(first[1]) for k in losses), sorted(losses)
        loss, _ = model.parse_losses(losses)
        assert torch.isfinite(loss)
        wrapper.optimizer.zero_grad()
        wrapper.backward(loss)
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert not missing, missing
        before = inits[0].proj.weight.detach().clone()
        wrapper.step()
        assert not torch.equal(before, inits[0].proj.weight)


def test_unsupported_variant_is_refused_when_the_model_is_built(ext_dir):
    cfg = Config.fromfile(str(ext_dir / 'superpixel_ext.py'))
    cfg.model.decoder.variant = 'vanilla'  # no local form: the local level cannot use it
    with DefaultScope.overwrite_default_scope(cfg.default_scope), \
            pytest.raises(ValueError, match='needs an E-step variant with a local form'):
        MODELS.build(cfg.model)
