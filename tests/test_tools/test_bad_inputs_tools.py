"""The bad-input corpus (tests/data/bad) through the tools: the curve tool and the demo error
with the file name, and with --skip-bad the curve tool and tools/test.py skip and count."""
import csv
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from clustseg.datasets import BadInputError

# image stem -> the file the error must name (relative to the corpus's BSDS layout, split jpg)
BSDS_BAD = {
    'truncated': 'images/jpg/truncated.jpg',
    'empty': 'images/jpg/empty.jpg',
    'text': 'images/jpg/text.jpg',
    'annsize': 'groundTruth/jpg/annsize.mat',
    'nogt': 'groundTruth/jpg/nogt.mat',
    'noseg': 'groundTruth/jpg/noseg.mat',
    'noann': 'groundTruth/jpg/noann.mat',
}


def _load_tool(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def curve_tool(repo_root):
    return _load_tool(repo_root / 'tools' / 'analysis_tools' / 'superpixel_curve.py',
                      'superpixel_curve_bad')


@pytest.fixture(scope='module')
def demo(repo_root):
    return _load_tool(repo_root / 'demo' / 'image_demo.py', 'image_demo_bad')


@pytest.fixture(scope='module')
def bad_root(repo_root):
    return repo_root / 'tests' / 'data' / 'bad'


def _one_sample_root(bad_root, tmp_path, stem):
    """A BSDS layout (split val) holding only corpus sample ``stem`` (image + its .mat)."""
    for sub in ('images/val', 'groundTruth/val'):
        (tmp_path / sub).mkdir(parents=True)
    shutil.copy(bad_root / 'images' / 'jpg' / f'{stem}.jpg', tmp_path / 'images/val')
    mat = bad_root / 'groundTruth' / 'jpg' / f'{stem}.mat'
    if mat.exists():
        shutil.copy(mat, tmp_path / 'groundTruth/val')
    return tmp_path


@pytest.mark.parametrize('stem', sorted(BSDS_BAD))
def test_curve_tool_names_the_bad_file(curve_tool, bad_root, tmp_path, stem):
    root = _one_sample_root(bad_root, tmp_path, stem)
    named = osp.join(str(root), BSDS_BAD[stem].replace('/jpg/', '/val/'))
    with pytest.raises(BadInputError) as info:
        curve_tool.main(['--slic-only', '--data-root', str(root), '--ks', '4',
                         '--out-dir', str(tmp_path / 'out')])
    assert info.value.path == named and named in str(info.value)
    assert not (tmp_path / 'out').exists()


def test_curve_tool_skip_bad_counts(curve_tool, bad_root, tmp_path, capsys):
    out = tmp_path / 'out'
    rows = curve_tool.main(['--slic-only', '--data-root', str(bad_root), '--split', 'jpg',
                            '--ks', '4', '--out-dir', str(out), '--skip-bad'])
    assert [r['num_images'] for r in rows] == [4, 4]  # good, gray, labeltrunc, tiny
    assert all(r['num_skipped'] == 7 for r in rows)
    with open(out / 'skipped.csv') as f:
        skipped = list(csv.DictReader(f))
    assert sorted(r['path'] for r in skipped) == sorted(
        str(bad_root / p) for p in BSDS_BAD.values())
    printed = capsys.readouterr().out
    assert '4 images from' in printed and '7 bad one(s) skipped' in printed
    assert 'truncated.jpg: truncated JPEG' in printed


def test_demo_names_the_bad_file(demo, bad_root, tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('model = dict()\n')
    ckpt = tmp_path / 'ckpt.pth'
    ckpt.write_bytes(b'')
    for name in ('truncated.jpg', 'empty.jpg', 'text.jpg'):
        img = str(bad_root / 'images' / 'jpg' / name)
        with pytest.raises(SystemExit) as info:
            demo.main([img, str(cfg), str(ckpt), '--device', 'cpu',
                       '--out-file', str(tmp_path / 'o.png')])
        assert str(info.value).startswith('error: bad input image: ') and img in str(info.value)
    assert not (tmp_path / 'o.png').exists()


TOY_MODULE = '''
import torch
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import MODELS


@MODELS.register_module()
class BadInputsToyNet(BaseModel):
    """4 x 4 pixel grid 'superpixels'."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='predict'):
        for img, sample in zip(inputs, data_samples):
            h, w = img.shape[-2:]
            ys, xs = torch.meshgrid(torch.arange(h) // 4, torch.arange(w) // 4, indexing='ij')
            sample.pred_superpixels = PixelData(data=(ys * 1000 + xs)[None])
        return data_samples
'''

CONFIG = '''
default_scope = 'mmseg'
custom_imports = dict(imports=['clustseg', 'bad_inputs_toy'], allow_failed_imports=False)
model = dict(type='BadInputsToyNet')
test_dataloader = dict(
    batch_size=1, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='BSDS500Dataset', data_root={root!r}, img_suffix='.jpg',
                 data_prefix=dict(img_path='images/jpg', seg_map_path='groundTruth/jpg'),
                 test_mode=True,
                 pipeline=[dict(type='LoadImageChecked'),
                           dict(type='LoadSuperpixelAnnotations', annotator='first'),
                           dict(type='PackSuperpixelInputs')]))
test_evaluator = dict(type='SuperpixelMetric')
test_cfg = dict(type='TestLoop')
env_cfg = dict(dist_cfg=dict(backend='gloo'))
log_level = 'INFO'
'''


def test_test_script_skip_bad(repo_root, bad_root, tmp_path):
    (tmp_path / 'bad_inputs_toy.py').write_text(TOY_MODULE)
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(textwrap.dedent(CONFIG.format(root=str(bad_root))))
    ckpt = tmp_path / 'toy.pth'
    torch.save(dict(state_dict={'scale': torch.ones(1)}), ckpt)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(tmp_path), str(repo_root), env.get('PYTHONPATH', '')) if p)
    out = tmp_path / 'metrics.json'
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools' / 'test.py'), str(cfg), str(ckpt),
         '--work-dir', str(tmp_path / 'work'), '--out', str(out), '--skip-bad'],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    metrics = json.loads(out.read_text())
    assert metrics['superpixel/num_skipped'] == 7
    # the mean over exactly the four readable images of the toy's 4 x 4 grid, computed here
    from clustseg.datasets.bsds_io import load_bsds_segmentations
    from clustseg.evaluation.functional import evaluate_superpixels
    expected = []
    for stem in ('good', 'gray', 'labeltrunc', 'tiny'):
        gts = load_bsds_segmentations(str(bad_root / 'groundTruth' / 'jpg' / f'{stem}.mat'))
        ys, xs = np.meshgrid(np.arange(gts.shape[1]) // 4, np.arange(gts.shape[2]) // 4,
                             indexing='ij')
        expected.append(evaluate_superpixels(ys * 1000 + xs, gts)['ASA'])
    assert metrics['superpixel/ASA'] == pytest.approx(np.mean(expected), abs=1e-6)
    assert metrics['superpixel/ASA'] < 0.999  # the grid misses some region of these images
    for rel in BSDS_BAD.values():  # each skipped file named in a warning
        assert f'skipping bad input {bad_root / rel}' in log, rel
    assert '7 bad input(s) skipped, not in the means' in log


def _tool_env(repo_root, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(tmp_path), str(repo_root), env.get('PYTHONPATH', '')) if p)
    return env


def _initial_checkpoint(config, path):
    """A checkpoint of the freshly built model of ``config`` (no training)."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from clustseg.registry import MODELS
    cfg = Config.fromfile(str(config))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict()), path)
    return path


def test_test_script_skip_bad_semantic(repo_root, bad_root, tmp_path):
    """tools/test.py --skip-bad on a semantic config (the COCO-Stuff embedded one, pointed at
    the semantic corpus): the six bad label maps are skipped, named and counted."""
    config = repo_root / 'configs' / 'semantic' / 'clustseg_compact_embedded.py'
    ckpt = _initial_checkpoint(config, tmp_path / 'init.pth')
    out = tmp_path / 'metrics.json'
    root = bad_root / 'semantic'
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools' / 'test.py'), str(config), str(ckpt),
         '--work-dir', str(tmp_path / 'work'), '--out', str(out), '--skip-bad',
         '--cfg-options', f'test_dataloader.dataset.data_root={root}',
         'test_dataloader.dataset.data_prefix.img_path=images/val',
         'test_dataloader.dataset.data_prefix.seg_map_path=annotations/val'],
        env=_tool_env(repo_root, tmp_path), cwd=repo_root, capture_output=True, text=True,
        timeout=300)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    metrics = json.loads(out.read_text())
    assert metrics['num_skipped'] == 6 and 0 <= metrics['mIoU'] <= 100
    for stem in ('labelempty', 'labeltrunc', 'labelsize', 'labelrgb', 'labelrange', 'nolabel'):
        assert f'skipping bad input {root}/annotations/val/{stem}_labelTrainIds.png' in log, stem
