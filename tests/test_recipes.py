"""docs/recipes.md is true to the configs: every row's key, evaluated on its table's config,
gives the row's value; and each paper config's optimizer puts the parameters in the groups the
table states (backbone at 0.1x, no weight decay on norms, embeddings and position tables)."""
import ast
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from clustseg.registry import MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[1]
DOC = ROOT / 'docs' / 'recipes.md'


class _Node:
    """Config access for the table keys: attributes / [int] / ['str'] as in Python, plus
    ``[TypeName]`` on a list = its first element of that ``type``."""

    def __init__(self, value):
        self.value = value

    def __getattr__(self, name):
        return _Node(self.value[name])

    def __getitem__(self, key):
        if isinstance(key, str) and key.startswith('type:'):
            kind = key[5:]
            return _Node(next(t for t in self.value if t.get('type') == kind))
        return _Node(self.value[key])

    def __len__(self):
        return len(self.value)

    def __mul__(self, other):
        return _Node(self.value * (other.value if isinstance(other, _Node) else other))

    __rmul__ = __mul__


def _plain(v):
    v = v.value if isinstance(v, _Node) else v
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _evaluate(cfg, key):
    expr = re.sub(r'\[([A-Z][A-Za-z0-9]*)\]', r"['type:\1']", key)
    names = {k: _Node(cfg[k]) for k in cfg.keys()}
    return _plain(eval(expr, {'len': len, '__builtins__': {}}, names))  # noqa: S307


def _rows():
    """(config path, key, value text, line number) for every table row of the doc."""
    rows, config = [], None
    for n, line in enumerate(DOC.read_text().splitlines(), 1):
        m = re.match(r'Config: `([^`]+)`', line)
        if m:
            config = m.group(1)
            continue
        if not line.startswith('|') or config is None:
            continue
        cells = [c.strip() for c in line.strip('|').split('|')]
        if len(cells) < 5 or not cells[3].startswith('`'):
            continue
        rows.append((config, cells[3].strip('`'), cells[4].strip('`'), n))
    return rows


ROWS = _rows()
CONFIGS = sorted({r[0] for r in ROWS})


def test_the_doc_has_tables_for_every_paper_config():
    for cfg in ('panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py',
                'panoptic/clustseg_swin-b_8xb2-lsj-50e_coco-panoptic.py',
                'panoptic/clustseg_convnext-b_8xb2-lsj-50e_coco-panoptic.py',
                'panoptic/clustseg_r101_8xb2-lsj-50e_coco-panoptic.py',
                'instance/clustseg_r50_8xb2-lsj-50e_coco.py',
                'instance/clustseg_r101_8xb2-lsj-50e_coco.py',
                'instance/clustseg_swin-b_8xb2-lsj-50e_coco.py',
                'instance/clustseg_convnext-b_8xb2-lsj-50e_coco.py',
                'semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py',
                'semantic/clustseg_swin-b_8xb2-100e_ade20k-640x640.py',
                'semantic/clustseg_convnext-b_8xb2-100e_ade20k-640x640.py',
                'superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py',
                'superpixel/clustseg_swin-b_8xb16-300k_bsds500-superpixel.py'):
        assert 'configs/' + cfg in CONFIGS, cfg
    assert len(ROWS) > 100


@pytest.mark.parametrize('config', CONFIGS)
def test_table_values_are_the_config_values(config):
    cfg = Config.fromfile(str(ROOT / config))
    wrong = []
    for path, key, text, line in ROWS:
        if path != config:
            continue
        want = _plain(ast.literal_eval(text)) if not text.startswith('dict(') else \
            _plain(eval(text, {'dict': dict, '__builtins__': {}}))  # noqa: S307
        try:
            got = _evaluate(cfg, key)
        except (KeyError, AttributeError, StopIteration, IndexError, TypeError) as e:
            wrong.append(f'line {line}: {key} not found ({type(e).__name__}: {e})')
            continue
        if got != want:
            wrong.append(f'line {line}: {key} = {got!r}, the table says {want!r}')
    assert not wrong, '\n'.join(wrong)


def _groups(config):
    """param name -> (lr, weight decay) of the config's optimizer, with the model built."""
    cfg = Config.fromfile(str(ROOT / config))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    ids = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            out[ids[id(p)]] = (group['lr'], group['weight_decay'])
    return out, model


@pytest.mark.parametrize('config', [
    'configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py',
    'configs/panoptic/ablations/clustseg_r50_learned-queries_coco-panoptic.py',
    'configs/semantic/clustseg_swin-b_8xb2-100e_ade20k-640x640.py',
    'configs/instance/clustseg_convnext-b_8xb2-lsj-50e_coco.py'])
def test_parameter_groups(config):
    groups, model = _groups(config)
    base = 1e-4
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)
    norms = {f'{m}.{p}' for m, mod in model.named_modules() if isinstance(mod, norm_types)
             for p, _ in mod.named_parameters(recurse=False)}
    for name, (lr, wd) in groups.items():
        in_backbone = name.startswith('backbone.')
        assert lr == pytest.approx(base * (0.1 if in_backbone else 1.0)), name
        no_decay = (name in norms or name.endswith(('.gamma', 'relative_position_bias_table',
                                                    '.embed.weight', '.pos_embed.weight',
                                                    '.fallback', 'level_embed.weight')))
        assert wd == (0.0 if no_decay else 0.05), (name, wd)
    if 'learned-queries' in config:
        assert any(n.endswith('.embed.weight') for n in groups)
    if 'swin' in config:
        assert any('relative_position_bias_table' in n for n in groups)


@pytest.mark.parametrize('config', [
    'configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py',
    'configs/superpixel/clustseg_swin-b_8xb16-300k_bsds500-superpixel.py'])
def test_superpixel_parameter_groups(config):
    """The superpixel recipes: §4.4's one rate, 1e-4, for every parameter, the backbone's
    included; weight decay 1e-4, none on any norm layer (backbone and head, as the other paper
    recipes) nor on the Swin backbone's position tables."""
    groups, model = _groups(config)
    swin = 'swin' in config
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)
    norms = {f'{m}.{p}' for m, mod in model.named_modules() if isinstance(mod, norm_types)
             for p, _ in mod.named_parameters(recurse=False)}
    assert any(n.startswith('backbone.') for n in norms)
    assert any(not n.startswith('backbone.') for n in norms)
    for name, (lr, wd) in groups.items():
        assert lr == pytest.approx(1e-4), name
        no_decay = name in norms or name.endswith(('relative_position_bias_table',
                                                   'absolute_pos_embed'))
        assert wd == (0.0 if no_decay else 1e-4), (name, wd)
    if swin:
        assert any(n.endswith('relative_position_bias_table') for n in groups)
