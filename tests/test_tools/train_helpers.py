"""Shared helpers of the tests that run tools/train.py in subprocesses on the real
BSDS500 images of tests/data (small crops, a few iterations)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED = {task: REPO_ROOT / 'configs' / task / 'clustseg_compact_embedded.py'
            for task in ('superpixel', 'panoptic', 'instance')}
DETECTION = ('panoptic', 'instance')
# semantic (mmseg EncoderDecoder): COCO-Stuff and ADE20K samples of tests/data
SEMANTIC = {'semantic': REPO_ROOT / 'configs' / 'semantic' / 'clustseg_compact_embedded.py',
            'semantic_ade20k': REPO_ROOT / 'configs' / 'semantic' /
            'clustseg_compact_embedded_ade20k.py'}

# Records each rank's loss per iteration and, at the end, its parameters (for the DDP test).
RECORD_MODULE = '''
import json
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RecordRankHook(Hook):
    priority = 'VERY_LOW'

    def before_train(self, runner):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses[runner.iter + 1] = float(outputs['loss'])

    def after_train(self, runner):
        rank = get_rank()
        with open(osp.join(runner.work_dir, f'rank{rank}_losses.json'), 'w') as f:
            json.dump(self.losses, f)
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        torch.save({k: v.detach().clone() for k, v in model.state_dict().items()},
                   osp.join(runner.work_dir, f'rank{rank}_state.pt'))
'''

# A fixed-size, random-free pipeline: the same pixels whatever the process or batch layout.
DETERMINISTIC_PIPELINE = '''[
    dict(type='LoadImageFromFile'),
    dict(type='LoadSuperpixelAnnotations', annotator='first', with_all=False),
    dict(type='CenterCrop', crop_size={crop}),
    dict(type='PackSuperpixelInputs'),
]'''


def write_config(tmp_path, task='superpixel', *, max_iters=4, batch_size=2, crop=64,
                 ckpt_interval=None, max_keep_ckpts=1, deterministic=False, group_norm=False,
                 record=False, extra=''):
    """A config over the task's embedded config for quick subprocess runs: no validation,
    the loss logged at every iteration without smoothing."""
    ckpt_interval = ckpt_interval or max_iters
    lines = [f"_base_ = [{str(EMBEDDED.get(task) or SEMANTIC[task])!r}]",
             f"max_iters = {max_iters}",
             "train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)",
             # no validation (mmengine would still validate after the last iteration)
             "val_dataloader = None", "val_cfg = None", "val_evaluator = None",
             "param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]",
             "log_processor = dict(window_size=1)",
             "default_hooks = dict(logger=dict(interval=1), checkpoint=dict("
             f"interval={ckpt_interval}, max_keep_ckpts={max_keep_ckpts}, save_best=None))",
             "randomness = dict(seed=0, deterministic=True)"]
    if task in DETECTION:  # images resized to a `crop` longer side; no flip if deterministic
        load = ("dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, "
                "with_seg=True)" if task == 'panoptic' else
                "dict(type='LoadAnnotations', with_bbox=True, with_mask=True)")
        steps = ["dict(type='LoadImageFromFile', to_float32=True)", load,
                 f"dict(type='Resize', scale=({crop}, {crop}), keep_ratio=True)"]
        if not deterministic:
            steps.append("dict(type='RandomFlip', prob=0.5)")
        if task == 'instance':
            steps.append("dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), "
                         "by_mask=True)")
        steps.append("dict(type='PackDetInputs')")
        lines.append(f"train_dataloader = dict(batch_size={batch_size}, dataset=dict("
                     f"pipeline=[{', '.join(steps)}]))")
    elif task in SEMANTIC:  # images resized to a `crop` longer side; no flip if deterministic
        reduce = task == 'semantic_ade20k'
        steps = ["dict(type='LoadImageChecked')",
                 f"dict(type='LoadAnnotations', reduce_zero_label={reduce})",
                 f"dict(type='Resize', scale=({crop}, {crop}), keep_ratio=True)"]
        if not deterministic:
            steps.append("dict(type='RandomFlip', prob=0.5)")
        steps.append("dict(type='PackSegInputs')")
        lines.append(f"train_dataloader = dict(batch_size={batch_size}, dataset=dict("
                     f"pipeline=[{', '.join(steps)}]))")
    elif deterministic:
        pipeline = DETERMINISTIC_PIPELINE.format(crop=(crop, crop))
        lines.append(f"train_dataloader = dict(batch_size={batch_size}, dataset=dict("
                     f"pipeline={pipeline}))")
    else:
        lines.append(f"crop_size = ({crop}, {crop})")
        lines.append(f"train_dataloader = dict(batch_size={batch_size}, dataset=dict(pipeline=["
                     "dict(type='LoadImageFromFile'), dict(type='LoadSuperpixelAnnotations', "
                     "annotator='random', with_all=False), dict(type='RandomFlip', "
                     "prob=0.5, direction='horizontal'), dict(type='SuperpixelRandomCrop', "
                     f"crop_size=crop_size, pad_val=dict(img=0, seg=-1)), "
                     "dict(type='PackSuperpixelInputs')]))")
    if group_norm and task in DETECTION:
        lines.append("norm = dict(type='GN', num_groups=1, requires_grad=True)")
        lines.append("model = dict(backbone=dict(norm_cfg=norm), panoptic_head=dict("
                     "pixel_decoder=dict(norm_cfg=norm)))")
    elif group_norm and task in SEMANTIC:
        lines.append("norm = dict(type='GN', num_groups=1, requires_grad=True)")
        lines.append("model = dict(backbone=dict(norm_cfg=norm), decode_head=dict("
                     "pixel_decoder=dict(norm_cfg=norm)))")
    elif group_norm:  # per-sample normalisation: batch layout does not change the maths
        lines.append("norm = dict(type='GN', num_groups=1, requires_grad=True)")
        lines.append("model = dict(backbone=dict(norm_cfg=norm), pixel_decoder=dict("
                     "norm_cfg=norm), embed_head=dict(norm_cfg=norm))")
    if record:
        (Path(tmp_path) / 'record_rank_module.py').write_text(RECORD_MODULE)
        lines.append("custom_imports = dict(imports=['clustseg', 'record_rank_module'], "
                     "allow_failed_imports=False)")
        lines.append("custom_hooks = [dict(type='RecordRankHook')]")
    path = Path(tmp_path) / f'{task}_test_cfg.py'
    path.write_text('\n'.join(lines) + '\n' + textwrap.dedent(extra))
    return path


def env_for(tmp_path):
    env = dict(os.environ)
    parts = [str(tmp_path), str(REPO_ROOT), env.get('PYTHONPATH', '')]
    env['PYTHONPATH'] = os.pathsep.join(p for p in parts if p)
    env['OMP_NUM_THREADS'] = '1'
    return env


def train_cmd(cfg, work_dir, *args):
    return [sys.executable, str(REPO_ROOT / 'tools' / 'train.py'), str(cfg), '--work-dir',
            str(work_dir), *args]


def run(cmd, env, cwd=REPO_ROOT, timeout=600):
    proc = subprocess.run(cmd, env=env, cwd=str(cwd), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f'{cmd} failed ({proc.returncode}):\n'
                                  f'{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}')
    return proc.stdout + proc.stderr


def logged_losses(work_dir):
    """{iteration: loss} from every run's scalars.json in ``work_dir`` (later runs win)."""
    out = {}
    for path in sorted(glob.glob(osp.join(str(work_dir), '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if 'loss' in rec and 'iter' in rec:
                    out[int(rec['iter'])] = float(rec['loss'])
    return out
