"""Train a ClustSeg model: python tools/train.py CONFIG [--work-dir D] [--resume [PATH]] [--amp]

Multi-process: tools/dist_train.sh (torchrun) or tools/slurm_train.sh; the backend is nccl on
GPUs and gloo on CPUs, whatever the config says.
"""
import argparse
import os
import os.path as osp
import sys
from copy import deepcopy

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import torch

import clustseg
from clustseg.engine import (FiniteLossHook, FreshDrawsHook, IterationSeedHook, ScheduleError,
                             check_val_interval, fit_schedules_to_max_iters,
                             register_model_checks, resumed_schedule_mismatch)
from clustseg.utils import (ConfigOptionError, close_distributed, find_resumable_checkpoint,
                            keep_freed_host_memory, launch_world_size, load_resumable,
                            merge_cfg_options, register_all_modules, setup_distributed)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Train a ClustSeg model')
    p.add_argument('config', help='config file')
    p.add_argument('--work-dir', help='where logs and checkpoints go '
                   '(default: cfg.work_dir or ./work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const='auto', default=None, metavar='auto|PATH',
                   help='resume training: from the latest checkpoint in the work dir '
                   '(no value or "auto") or from PATH; give it after CONFIG')
    p.add_argument('--amp', action='store_true',
                   help='mixed precision: AmpOptimWrapper (loss-scaled fp16, or --amp-dtype) on '
                   'CUDA, bfloat16 autocast (AutocastOptimWrapper) on CPU')
    p.add_argument('--amp-dtype', choices=['float16', 'bfloat16'], default=None,
                   help='autocast dtype for --amp (default: float16 on CUDA, bfloat16 on CPU)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config entries, e.g. train_cfg.max_iters=100')
    p.add_argument('--partial-load', action='store_true',
                   help='load a checkpoint whose keys or shapes do not all fit the model (the '
                   'matching part; the others are only logged). Without it such a checkpoint is '
                   'an error naming the keys')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--auto-scale-lr', action='store_true',
                   help="scale the learning rate linearly from the config's auto_scale_lr."
                   'base_batch_size to this run\'s GPUs x per-GPU batch')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(path, cfg_options=None):
    """Read a config file (a clear error for a missing file), apply ``cfg_options`` and make
    the parameter schedules follow ``train_cfg.max_iters``
    (:func:`clustseg.engine.fit_schedules_to_max_iters`); ``train_cfg.val_interval`` must be
    >= 1 (:func:`clustseg.engine.check_val_interval`)."""
    if not osp.isfile(path):
        sys.exit(f'error: config file not found: {path}')
    cfg = Config.fromfile(path)
    old_max_iters = (cfg.get('train_cfg') or {}).get('max_iters')
    old_schedulers = deepcopy(cfg.get('param_scheduler'))
    try:
        merge_cfg_options(cfg, cfg_options, path)
    except ConfigOptionError as err:
        sys.exit(f'error: {err}')
    try:  # schedules that ended at the config's max_iters end at the new one
        fit_schedules_to_max_iters(cfg, old_max_iters, old_schedulers)
        check_val_interval(cfg)
    except ScheduleError as err:
        sys.exit(f'error: {path}: {err}')
    return cfg


def checkpoint_dirs(cfg) -> list:
    """Where this run's checkpoints are: the work dir, and with
    ``default_hooks.checkpoint.out_dir`` the folder mmengine's checkpoint hook writes them
    to, ``<out_dir>/<work dir's name>`` (``last_checkpoint`` stays in the work dir)."""
    dirs = [cfg.work_dir]
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir') if isinstance(hook, dict) else None
    if out_dir:
        # mmengine's CheckpointHook: the basename of the absolute work dir
        dirs.append(osp.join(out_dir, osp.basename(osp.abspath(cfg.work_dir).rstrip(osp.sep))))
    return [d for d in dirs if osp.isdir(d)] or [cfg.work_dir]


def check_batch(cfg, config_path, auto_scale: bool) -> None:
    """The learning rate against this run's batch (SyncBN on a CPU run is
    :func:`clustseg.utils.setup_distributed`'s).

    ``--auto-scale-lr`` enables ``cfg.auto_scale_lr`` (an error naming the config when it has
    none); without it, a total batch (GPUs x per-GPU batch) other than its
    ``base_batch_size`` is logged as a warning, since the learning rate is then the
    recipe's for another batch.
    """
    scale = cfg.get('auto_scale_lr')
    if auto_scale:
        if not scale or 'base_batch_size' not in scale:
            sys.exit(f'error: --auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) in '
                     f'{config_path}')
        scale.enable = True
    # on a GPU launch the process group does not exist yet (mmengine's Runner makes it)
    world = launch_world_size(cfg.get('launcher', 'none'))
    batch = (cfg.get('train_dataloader') or {}).get('batch_size')
    if scale and not scale.get('enable') and batch and \
            world * batch != scale.get('base_batch_size', world * batch):
        print_log(f'{world} process(es) x batch_size {batch} = {world * batch} images per '
                  f'step, but {config_path} is the recipe for {scale["base_batch_size"]} '
                  '(auto_scale_lr.base_batch_size): its learning rate is used unscaled (pass '
                  '--auto-scale-lr to scale it linearly), and its schedule counts iterations, '
                  f'so this run sees {world * batch / scale["base_batch_size"]:.3g}x the '
                  "recipe's images", logger='current', level=30)


def enable_amp(cfg, config_path, dtype=None):
    """Switch ``cfg.optim_wrapper`` to mixed precision for this machine's device."""
    optim_wrapper = cfg.get('optim_wrapper')
    if optim_wrapper is None:
        sys.exit(f'error: --amp needs `optim_wrapper` in {config_path}')
    kind = optim_wrapper.get('type', 'OptimWrapper')
    if kind in ('AmpOptimWrapper', 'AutocastOptimWrapper'):
        print_log(f'{kind} is already set in {config_path}', logger='current')
        return
    if kind != 'OptimWrapper':
        sys.exit(f'error: --amp works with optim_wrapper.type=OptimWrapper, got {kind!r} in '
                 f'{config_path}')
    if torch.cuda.is_available():
        optim_wrapper.type = 'AmpOptimWrapper'
        optim_wrapper.setdefault('loss_scale', 'dynamic')
        if dtype is not None:
            optim_wrapper.dtype = dtype
    else:
        if dtype == 'float16':
            sys.exit('error: --amp-dtype float16 needs CUDA (loss scaling); on CPU use bfloat16')
        optim_wrapper.type = 'AutocastOptimWrapper'
        optim_wrapper.dtype = 'bfloat16'


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available():  # CPU: no page faults for every large temporary
        keep_freed_host_memory()
    cfg = load_config(args.config, args.cfg_options)
    # The Runner switches to cfg.default_scope; mmseg is the fallback for configs without one.
    register_all_modules(init_default_scope='default_scope' not in cfg)
    setup_distributed(cfg, args.launcher)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])

    check_batch(cfg, args.config, args.auto_scale_lr)
    if args.amp:
        enable_amp(cfg, args.config, args.amp_dtype)
    elif args.amp_dtype:
        sys.exit('error: --amp-dtype needs --amp')

    ckpt = None  # the checkpoint to resume, read once here (each rank reads it)
    if args.resume == 'auto':
        # the newest checkpoint that loads, not blindly the one `last_checkpoint` names
        dirs = checkpoint_dirs(cfg)
        found, ckpt, _ = find_resumable_checkpoint(dirs[0], extra_dirs=dirs[1:])
        if found is None:
            print_log(f'--resume: no resumable checkpoint in {" or ".join(dirs)}; training '
                      'starts from scratch', logger='current', level=30)
            cfg.resume, cfg.load_from = False, None
        else:
            print_log(f'--resume: resuming from {found}', logger='current')
            cfg.resume, cfg.load_from = True, found
    elif args.resume is not None:
        if '://' not in args.resume and not osp.isfile(args.resume):
            sys.exit(f'error: --resume checkpoint not found: {args.resume}')
        cfg.resume, cfg.load_from = True, args.resume
    if cfg.get('resume') and cfg.get('load_from') and '://' not in cfg.load_from:
        # the checks of the automatic choice (an explicit PATH), and the schedule
        reason = None
        if ckpt is None:
            ckpt, reason = load_resumable(cfg.load_from)
        problem = reason or resumed_schedule_mismatch(cfg, ckpt, cfg.load_from)
        del ckpt
        if problem:
            sys.exit(f'error: --resume: {problem}')

    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    # class counts against the dataset, checkpoint keys / shapes against the model
    register_model_checks(runner, allow_partial_load=args.partial_load)
    runner.register_hook(FreshDrawsHook())  # load_from: this run's seed draws, not the old run's
    runner.register_hook(FiniteLossHook())  # a NaN / inf loss stops the run, naming the terms
    # torch's global generator (backbone drop path) per (seed, rank, iteration): exact resume
    runner.register_hook(IterationSeedHook())
    print_log(f'clustseg {clustseg.__version__}', logger='current')
    runner.train()
    close_distributed()


if __name__ == '__main__':
    main()
