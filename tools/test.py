"""Evaluate a checkpoint:
python tools/test.py CONFIG CHECKPOINT [--out m.json | p.pkl] [--show-dir D]"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process
from mmengine.fileio import dump
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import torch

import clustseg  # noqa: F401  (applies the checkpoint fixes)
from clustseg.engine import register_model_checks
from clustseg.utils import (ConfigOptionError, close_distributed, keep_freed_host_memory,
                            merge_cfg_options, register_all_modules, setup_distributed)


#: --out: metrics (JSON) or predictions (pickle), by the file's suffix
PICKLE_SUFFIXES = ('.pkl', '.pickle')
OUT_SUFFIXES = ('.json', ) + PICKLE_SUFFIXES


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Test (evaluate) a ClustSeg model')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--work-dir', help='where the evaluation logs go')
    p.add_argument('--out', help='a .json file: write the metrics to it; a .pkl / .pickle file: '
                   'dump every test image\'s prediction to it for offline analysis, as mmdet\'s '
                   'tools/test.py (mmdet\'s DumpDetResults: instance masks as RLE; mmengine\'s '
                   'DumpResults for the semantic / superpixel configs)')
    p.add_argument('--show-dir', help='draw every test image with its prediction into this dir')
    p.add_argument('--show', action='store_true', help='show the drawn results in a window')
    p.add_argument('--wait-time', type=float, default=2, help='seconds per shown image')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config entries, e.g. test_dataloader.batch_size=1')
    p.add_argument('--skip-bad', action='store_true',
                   help='skip unreadable test samples with a warning naming the file and count '
                   'them in the metrics (sets test_dataloader.dataset.skip_bad=True)')
    p.add_argument('--partial-load', action='store_true',
                   help='load a checkpoint whose keys or shapes do not all fit the model (the '
                   'matching part; the others are only logged). Without it such a checkpoint is '
                   'an error naming the keys')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = p.parse_args(argv)
    if args.out and not args.out.endswith(OUT_SUFFIXES):
        p.error(f'--out {args.out}: expected a .json (metrics) or .pkl / .pickle (predictions) '
                'file')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def enable_visualization(cfg, config_path, show_dir=None, show=False, wait_time=2):
    """Turn on ``default_hooks.visualization`` for every test image.

    With ``show_dir`` each image is written there, named after its input image: as
    ``test_<image name>_0.png`` by a ``LocalVisBackend`` (replacing any local backend of the
    config; other backends stay) through mmseg's hook (semantic, superpixel), and as
    ``<image name>`` through mmdet's ``DetVisualizationHook`` (panoptic, instance; its
    ``test_out_dir``, since it hands the backend one name, ``test_img``, for every image).
    """
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        sys.exit(f'error: --show/--show-dir need `default_hooks.visualization` in {config_path}')
    if cfg.get('visualizer') is None:
        sys.exit(f'error: --show/--show-dir need `visualizer` in {config_path}')
    hook.draw = True
    hook.interval = 1
    hook.show = show
    hook.wait_time = wait_time
    if show_dir is not None:
        backends = [b for b in cfg.visualizer.get('vis_backends') or []
                    if b.get('type') != 'LocalVisBackend']
        backends.append(dict(type='LocalVisBackend', save_dir=show_dir, img_save_dir='.'))
        cfg.visualizer.vis_backends = backends
        if hook.get('type', '').split('.')[-1] == 'DetVisualizationHook':
            hook.test_out_dir = osp.abspath(show_dir)  # joined to the work dir: absolute


def drop_training_parts(cfg):
    """Testing reads only the test split: without this, a hook that asks for ``runner.iter``
    (mmseg's SegVisualizationHook) makes mmengine build the train loop and its dataset, which
    fails where the training data are absent."""
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                'val_dataloader', 'val_cfg', 'val_evaluator'):
        cfg[key] = None


def add_prediction_dump(runner, cfg, path: str) -> None:
    """``--out *.pkl``: one more test metric that pickles every test image's prediction
    (its data sample, ground truth dropped by mmdet's) to ``path``."""
    if cfg.get('default_scope') == 'mmdet':
        from mmdet.evaluation.metrics import DumpDetResults as Dump
    else:
        from mmengine.evaluator import DumpResults as Dump
    runner.test_evaluator.metrics.append(Dump(out_file_path=path))


def main(argv=None):
    args = parse_args(argv)
    if not torch.cuda.is_available():  # CPU: no page faults for every large temporary
        keep_freed_host_memory()
    if not osp.isfile(args.config):
        sys.exit(f'error: config file not found: {args.config}')
    if '://' not in args.checkpoint and not osp.isfile(args.checkpoint):
        sys.exit(f'error: checkpoint file not found: {args.checkpoint}')
    cfg = Config.fromfile(args.config)
    try:
        merge_cfg_options(cfg, args.cfg_options, args.config)
    except ConfigOptionError as err:
        sys.exit(f'error: {err}')
    if args.skip_bad:
        cfg.test_dataloader.dataset.skip_bad = True
    # The Runner switches to cfg.default_scope; mmseg is the fallback for configs without one.
    register_all_modules(init_default_scope='default_scope' not in cfg)
    setup_distributed(cfg, args.launcher)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    drop_training_parts(cfg)
    if args.show or args.show_dir:
        enable_visualization(cfg, args.config, args.show_dir, args.show, args.wait_time)

    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    # class counts against the dataset, checkpoint keys / shapes against the model
    register_model_checks(runner, allow_partial_load=args.partial_load)
    pickled = args.out and args.out.endswith(PICKLE_SUFFIXES)
    if pickled:
        add_prediction_dump(runner, cfg, args.out)
    metrics = runner.test()
    if pickled and is_main_process():
        runner.logger.info(f'predictions written to {args.out}')
    elif args.out and is_main_process():
        dump(metrics, args.out, file_format='json', indent=2)
        runner.logger.info(f'metrics written to {args.out}')
    close_distributed()


if __name__ == '__main__':
    main()
