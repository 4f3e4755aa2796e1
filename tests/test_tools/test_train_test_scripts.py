"""End to end on a toy model, dataset and metric pulled in through ``custom_imports``:
tools/train.py (incl. --resume), tools/test.py (--out, --show-dir) and demo/image_demo.py."""
import json
import os
import subprocess
import sys
import textwrap

import mmcv
import numpy as np
import pytest
import torch

TOY_MODULE = '''
import os.path as osp

import mmcv
import numpy as np
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.structures import PixelData
from mmseg.registry import DATASETS, METRICS, MODELS
from mmseg.structures import SegDataSample
from torch.utils.data import Dataset


@DATASETS.register_module()
class ToyImages(Dataset):
    def __init__(self, img_dir, num=3, pipeline=None):
        self.paths = []
        rng = np.random.RandomState(0)
        for i in range(num):
            path = osp.join(img_dir, f'toy_{i}.png')
            if not osp.exists(path):
                mmcv.imwrite(rng.randint(0, 255, (16, 20, 3)).astype(np.uint8), path)
            self.paths.append(path)
        self.metainfo = dict(classes=('x',))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = mmcv.imread(self.paths[i])
        sample = SegDataSample(metainfo=dict(img_path=self.paths[i], ori_shape=img.shape[:2]))
        gt = torch.zeros(1, *img.shape[:2], dtype=torch.long)
        gt[..., img.shape[1] // 2:] = 1
        sample.gt_sem_seg = PixelData(data=gt)
        return dict(inputs=torch.from_numpy(img).permute(2, 0, 1).float() / 255,
                    data_samples=sample)


@MODELS.register_module()
class ToySuperpixelNet(BaseModel):
    def __init__(self, dropout=0.0):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.dropout = dropout  # draws from torch's global generator, as a backbone's drop path

    def forward(self, inputs, data_samples=None, mode='tensor'):
        feats = self.conv(torch.stack(inputs))
        if mode == 'loss':
            feats = nn.functional.dropout(feats, self.dropout, self.training)
            return dict(loss=feats.pow(2).mean())
        labels = feats.argmax(1)
        for sample, lab in zip(data_samples, labels):
            ys, xs = torch.meshgrid(torch.arange(lab.shape[0]) // 4,
                                    torch.arange(lab.shape[1]) // 4, indexing='ij')
            sample.pred_superpixels = PixelData(data=(ys * 100 + xs)[None])
        return data_samples

    def superpixels(self, inputs, num_superpixels=None):
        """Grid 'superpixels' with about num_superpixels cells (the clustseg.apis contract)."""
        out = []
        for img in inputs:
            h, w = img.shape[-2:]
            step = max(1, int(round((h * w / (num_superpixels or 4)) ** 0.5)))
            ys, xs = np.meshgrid(np.arange(h) // step, np.arange(w) // step, indexing='ij')
            out.append((ys * (xs.max() + 1) + xs).astype(np.int64))
        return out


@METRICS.register_module()
class ToyCount(BaseMetric):
    def process(self, data_batch, data_samples):
        for s in data_samples:
            self.results.append(len(torch.unique(s['pred_superpixels']['data'])))

    def compute_metrics(self, results):
        return dict(mean_superpixels=float(np.mean(results)))
'''

CONFIG = '''
default_scope = 'mmseg'
custom_imports = dict(imports=['clustseg', 'toy_tools_module'], allow_failed_imports=False)
data = dict(type='ToyImages', img_dir={img_dir!r},
            pipeline=[dict(type='LoadImageFromFile'), dict(type='PackSegInputs')])
model = dict(type='ToySuperpixelNet')
train_dataloader = dict(batch_size=2, num_workers=0, dataset=data,
                        sampler=dict(type='InfiniteSampler', shuffle=True))
test_dataloader = dict(batch_size=2, num_workers=0, dataset=data,
                       sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='ToyCount')
test_cfg = dict(type='TestLoop')
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2)
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
param_scheduler = [dict(type='PolyLR', eta_min=0.0, by_epoch=False, power=1.0)]
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    visualization=dict(type='SegVisualizationHook'))
visualizer = dict(type='SuperpixelVisualizer', vis_backends=[dict(type='LocalVisBackend')])
log_level = 'INFO'
randomness = dict(seed=0)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
'''


def _run(args, env, cwd):
    proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, f'{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}'
    return proc.stdout + proc.stderr


@pytest.fixture()
def toy_setup(tmp_path, repo_root):
    (tmp_path / 'toy_tools_module.py').write_text(TOY_MODULE)
    (tmp_path / 'imgs').mkdir()
    cfg = tmp_path / 'toy_cfg.py'
    cfg.write_text(textwrap.dedent(CONFIG.format(img_dir=str(tmp_path / 'imgs'))))
    env = dict(os.environ)
    parts = [str(tmp_path), env.get('PYTHONPATH', ''), str(repo_root)]
    env['PYTHONPATH'] = os.pathsep.join(p for p in parts if p)
    env['OMP_NUM_THREADS'] = '1'
    return tmp_path, cfg, env


def test_train_resume_and_test(toy_setup, repo_root):
    tmp_path, cfg, env = toy_setup
    work_dir = tmp_path / 'work'
    train = str(repo_root / 'tools' / 'train.py')
    _run([train, str(cfg), '--work-dir', str(work_dir)], env, tmp_path)
    assert (work_dir / 'iter_2.pth').is_file()

    log = _run([train, str(cfg), '--work-dir', str(work_dir), '--resume',
                '--cfg-options', 'train_cfg.max_iters=4'], env, tmp_path)
    assert 'resumed epoch: 0, iter: 2' in log
    assert (work_dir / 'iter_4.pth').is_file()

    show_dir, out = tmp_path / 'show', tmp_path / 'metrics.json'
    _run([str(repo_root / 'tools' / 'test.py'), str(cfg), str(work_dir / 'iter_4.pth'),
          '--work-dir', str(work_dir), '--show-dir', str(show_dir), '--out', str(out)],
         env, tmp_path)
    pngs = sorted(p.name for p in show_dir.glob('*.png'))
    assert pngs == [f'test_toy_{i}.png_0.png' for i in range(3)]
    metrics = json.loads(out.read_text())
    assert metrics['mean_superpixels'] == 20.0  # 16 x 20 image, 4 x 4 cells

    # publishing keeps the weights, drops the training state, and still loads weights-only
    published = tmp_path / 'published.pth'
    log = _run([str(repo_root / 'tools' / 'model_converters' / 'publish_model.py'),
                str(work_dir / 'iter_4.pth'), str(published)], env, tmp_path)
    assert 'sha256' in log
    full = torch.load(work_dir / 'iter_4.pth', map_location='cpu', weights_only=True)
    small = torch.load(published, map_location='cpu', weights_only=True)
    assert set(small) == {'state_dict', 'meta'} and 'optimizer' in full
    for k, v in full['state_dict'].items():
        torch.testing.assert_close(small['state_dict'][k], v)
    assert small['meta']['iter'] == 4
    # a truncated checkpoint: one error line naming it (the allow-listed load)
    broken = tmp_path / 'broken.pth'
    broken.write_bytes((work_dir / 'iter_4.pth').read_bytes()[:1000])
    proc = subprocess.run([sys.executable, str(repo_root / 'tools' / 'model_converters' /
                                               'publish_model.py'), str(broken),
                           str(tmp_path / 'x.pth')], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0 and str(broken) in proc.stderr
    assert 'Traceback' not in proc.stderr and 'weights_only' not in proc.stderr


def test_clear_errors(toy_setup, repo_root, tmp_path):
    _, cfg, env = toy_setup
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools' / 'test.py'), str(cfg),
         str(tmp_path / 'missing.pth')], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'checkpoint file not found' in proc.stderr
    assert 'missing.pth' in proc.stderr
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools' / 'train.py'), str(tmp_path / 'nope.py')],
        env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and 'config file not found' in proc.stderr


def test_a_loss_that_is_not_finite_stops_training_before_its_checkpoint(toy_setup, repo_root):
    """An lr of 1e30 makes the second iteration's loss overflow: tools/train.py exits with an
    error naming that iteration, and the checkpoint of the first is the last one written."""
    tmp_path, cfg, env = toy_setup
    work = tmp_path / 'work_nan'
    proc = subprocess.run(
        [sys.executable, str(repo_root / 'tools' / 'train.py'), str(cfg), '--work-dir',
         str(work), '--cfg-options', 'optim_wrapper.optimizer.lr=1e30',
         'optim_wrapper.optimizer.momentum=0.0', 'train_cfg.max_iters=4',
         'default_hooks.checkpoint.interval=1'],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'NonFiniteLossError: not finite at iteration 2: loss=inf' in proc.stderr, \
        proc.stderr[-3000:]
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_1.pth']


def test_resume_replays_the_global_generator_of_its_iteration(toy_setup, repo_root):
    """A layer that draws from torch's global generator (dropout here; a backbone's drop path
    in the Swin / ConvNeXt configs) draws at a resumed iteration what the uninterrupted run
    drew there: IterationSeedHook reseeds it per (seed, rank, iteration)."""
    from train_helpers import logged_losses
    tmp_path, cfg, env = toy_setup
    train = str(repo_root / 'tools' / 'train.py')
    opts = ['--cfg-options', 'model.dropout=0.5', 'train_cfg.max_iters=4',
            'default_hooks.checkpoint.interval=2']
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    _run([train, str(cfg), '--work-dir', str(straight), *opts], env, tmp_path)
    _run([train, str(cfg), '--work-dir', str(resumed), '--resume',
          str(straight / 'iter_2.pth'), *opts], env, tmp_path)
    ref, got = logged_losses(straight), logged_losses(resumed)
    assert sorted(ref) == [1, 2, 3, 4] and sorted(got) == [3, 4]
    assert len({ref[i] for i in ref}) == 4
    for it in (3, 4):
        assert got[it] == pytest.approx(ref[it], rel=1e-6), (it, got, ref)


def test_iteration_seed_depends_on_seed_rank_and_iteration(monkeypatch):
    from types import SimpleNamespace

    from clustseg.engine.hooks import iteration_seed_hook as ish

    def draw(seed, rank, it):
        monkeypatch.setattr(ish, 'get_rank', lambda: rank)
        torch.manual_seed(12345)  # whatever state the generator had before
        ish.IterationSeedHook().before_train_iter(SimpleNamespace(seed=seed, iter=it), 0)
        return torch.rand(4)

    base = draw(0, 0, 5)
    torch.testing.assert_close(draw(0, 0, 5), base)
    for other in (draw(1, 0, 5), draw(0, 1, 5), draw(0, 0, 6)):
        assert not torch.equal(other, base)


def test_a_gradient_norm_that_is_not_finite_stops_every_rank():
    """Under DDP the rank whose loss is NaN is not rank 0, which writes the checkpoints: its
    NaN reaches every rank through the all-reduced gradients, whose norm the optimizer
    wrapper logs, so the hook stops every rank at that iteration. Not under a loss scaler
    (fp16 AMP), whose overflowing steps are skipped by design."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from clustseg.engine.hooks.finite_loss_hook import FiniteLossHook, NonFiniteLossError
    hub = MessageHub(name='finite_loss_test')
    hub.update_scalar('train/loss', 0.5)  # this rank's own loss: finite
    hub.update_scalar('train/loss_mask', 0.25)
    hub.update_scalar('train/grad_norm', 1.5)
    runner = SimpleNamespace(message_hub=hub, iter=6, work_dir='wd',
                             optim_wrapper=SimpleNamespace())
    hook = FiniteLossHook()
    hook.after_train_iter(runner, 0)
    hub.update_scalar('train/grad_norm', float('nan'))
    with pytest.raises(NonFiniteLossError, match=r'not finite at iteration 7: grad_norm=nan'):
        hook.after_train_iter(runner, 0)
    runner.optim_wrapper = SimpleNamespace(loss_scaler=object())
    hook.after_train_iter(runner, 0)
    hub.update_scalar('train/loss_mask', float('inf'))
    with pytest.raises(NonFiniteLossError, match=r'iteration 7: loss_mask=inf'):
        hook.after_train_iter(runner, 0)


def test_image_demo(toy_setup, repo_root):
    tmp_path, cfg, env = toy_setup
    img = tmp_path / 'demo.png'
    mmcv.imwrite(np.random.RandomState(1).randint(0, 255, (16, 20, 3)).astype(np.uint8), str(img))
    ckpt = tmp_path / 'toy.pth'
    torch.save(dict(state_dict={'conv.weight': torch.zeros(4, 3, 1, 1),
                                'conv.bias': torch.zeros(4)}), ckpt)
    out = tmp_path / 'overlay.png'
    log = _run([str(repo_root / 'demo' / 'image_demo.py'), str(img), str(cfg), str(ckpt),
                '--num-superpixels', '20', '--out-file', str(out), '--device', 'cpu'],
               env, tmp_path)
    assert '20 superpixels' in log  # 4 x 4 cells on a 16 x 20 image
    overlay = mmcv.imread(str(out), channel_order='rgb')
    assert overlay.shape == (16, 20, 3)
    assert ((overlay == (255, 255, 0)).all(-1)).any()  # default boundary colour drawn
