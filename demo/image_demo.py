"""One image through a ClustSeg model, drawn over it.

python demo/image_demo.py IMG CONFIG CHECKPOINT --num-superpixels 600 --out-file out.png
python demo/image_demo.py IMG CONFIG CHECKPOINT --task panoptic --out-file pan.png
python demo/image_demo.py IMG CONFIG CHECKPOINT --task instance --score-thr 0.5 --out-file ins.png
python demo/image_demo.py IMG CONFIG CHECKPOINT --task semantic --out-file sem.png

Without ``--task`` the task is the model's: ``superpixel`` for a superpixel model, ``semantic``
for a semantic segmentor, ``panoptic`` for a panoptic / instance detector whose
``test_cfg.panoptic_on`` is set, else ``instance``. A ``--task`` the model cannot do is an
error saying what the model does.

``superpixel``: superpixel boundaries over the image. ``panoptic``: the panoptic
overlay (segments coloured by class, outlined, labelled) and ``instance``: instance masks,
boxes, labels and scores, both drawn by ``ClustSegDetVisualizer`` (mmdet's). ``semantic``:
the class map blended over the image with class names, drawn by mmseg's ``SegLocalVisualizer``.

``--cfg-options`` changes the config as in tools/test.py (e.g.
``model.test_cfg.object_mask_thr=0.8``); ``--partial-load`` loads the part of a checkpoint that
fits the model (the rest is logged), which is otherwise an error naming the keys.
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from clustseg.apis import inference_superpixel, init_model, load_model_checkpoint
from clustseg.datasets import BadInputError, read_image
from clustseg.engine import ModelCheckError
from clustseg.utils import ConfigOptionError
from clustseg.visualization import ClustSegDetVisualizer, SuperpixelVisualizer

TASKS = ('superpixel', 'panoptic', 'instance', 'semantic')
DEFAULT_OUT = dict(superpixel='superpixels.png', panoptic='panoptic.png', instance='instance.png',
                   semantic='semantic.png')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='ClustSeg image demo')
    p.add_argument('img', help='input image')
    p.add_argument('config', help='config file')
    p.add_argument('checkpoint', help='checkpoint file')
    p.add_argument('--task', choices=TASKS, default=None,
                   help='what the model predicts and how it is drawn (default: what the '
                   "config's model predicts)")
    p.add_argument('--num-superpixels', type=int, default=None,
                   help='superpixel: number of superpixels K (default: the config\'s test_cfg)')
    p.add_argument('--out-file', default=None,
                   help='where to write the overlay (default: superpixels.png / panoptic.png / '
                        'instance.png / semantic.png by task)')
    p.add_argument('--device', default='cuda:0' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--boundary-color', type=int, nargs=3, default=None,
                   metavar=('R', 'G', 'B'), help='superpixel: boundary colour (default yellow)')
    p.add_argument('--mean-color', action='store_true', default=None,
                   help='superpixel: fill superpixels with their mean')
    p.add_argument('--score-thr', type=float, default=None,
                   help='instance: draw instances scoring above this (default 0.3)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config entries, e.g. model.test_cfg.object_mask_thr=0.8')
    p.add_argument('--partial-load', action='store_true',
                   help='load the part of the checkpoint that fits the model (the other keys '
                   'are logged); without it such a checkpoint is an error naming the keys')
    p.add_argument('--opacity', type=float, default=None,
                   help='semantic: opacity of the class colours (default 0.5)')
    return p.parse_args(argv)


#: Options of one task: (argparse dest, option, the tasks it applies to, default).
TASK_OPTIONS = (
    ('num_superpixels', '--num-superpixels', ('superpixel', ), None),
    ('boundary_color', '--boundary-color', ('superpixel', ), (255, 255, 0)),
    ('mean_color', '--mean-color', ('superpixel', ), False),
    ('score_thr', '--score-thr', ('instance', ), 0.3),
    ('opacity', '--opacity', ('semantic', ), 0.5),
)


def apply_task_options(args, task: str) -> None:
    """An option given for another task is an error (it would be ignored); the others get
    their defaults."""
    for dest, option, tasks, default in TASK_OPTIONS:
        if getattr(args, dest) is None:
            setattr(args, dest, default)
        elif task not in tasks:
            sys.exit(f'error: {option} is for --task {" / ".join(tasks)}, but this run draws '
                     f'{task}: it would be ignored')


def model_task(model):
    """The demo task of ``model``: 'superpixel' (it has ``superpixels()``, the
    ``clustseg.apis`` contract), 'semantic' (a ClustSeg semantic head as ``decode_head``),
    'panoptic' / 'instance' (a ClustSeg head as ``panoptic_head``; panoptic when
    ``test_cfg.panoptic_on``), or None for anything else."""
    from clustseg.models.heads import ClustSegHead, ClustSegSemanticHead
    if callable(getattr(model, 'superpixels', None)):
        return 'superpixel'
    if isinstance(getattr(model, 'decode_head', None), ClustSegSemanticHead):
        return 'semantic'
    if isinstance(getattr(model, 'panoptic_head', None), ClustSegHead):
        test_cfg = getattr(model, 'test_cfg', None) or {}
        return 'panoptic' if test_cfg.get('panoptic_on', False) else 'instance'
    return None


def resolve_task(args, model):
    """``args.task``, or the model's task when not given; exits with an error naming the
    config when the model cannot do it."""
    task = model_task(model)
    if task is None:
        sys.exit(f'error: {args.config} builds a {type(model).__name__}, which is not a '
                 f'ClustSeg superpixel, semantic, panoptic or instance model')
    if args.task is None:
        print(f'task: {task} (from the model of {args.config}; --task to choose)')
        return task
    detector = ('panoptic', 'instance')
    if args.task != task and not (args.task in detector and task in detector):
        article = 'an' if task[0] in 'aeiou' else 'a'
        sys.exit(f'error: --task {args.task} needs a {args.task} config, but {args.config} '
                 f'builds {article} {task} model ({type(model).__name__}); use --task {task} '
                 'or leave --task out')
    return args.task


def draw_superpixels(args, model, img):
    """Superpixel boundaries (or mean colours) over ``img`` (H x W x 3 BGR) -> ``out_file``."""
    labels = inference_superpixel(model, img, num_superpixels=args.num_superpixels,
                                  img_path=args.img)
    sample = SegDataSample()
    sample.pred_superpixels = PixelData(data=torch.from_numpy(np.asarray(labels))[None])
    visualizer = SuperpixelVisualizer(name='clustseg_demo', boundary_color=args.boundary_color,
                                      fill_mean_color=args.mean_color)
    visualizer.add_datasample('demo', np.ascontiguousarray(img[..., ::-1]), sample,
                              draw_gt=False, out_file=args.out_file)
    print(f'{len(np.unique(labels))} superpixels -> {args.out_file}')


def draw_detections(args, model, img):
    """Panoptic overlay or instance masks + boxes of ``img`` (H x W x 3 BGR) -> ``out_file``
    (drawn by ClustSegDetVisualizer, mmdet's, at the image's size)."""
    from mmdet.evaluation.functional import INSTANCE_OFFSET

    from clustseg.apis.inference import detector_dataset_meta, inference_detector
    try:
        sample = inference_detector(model, img, img_path=args.img)
    except TypeError as err:  # not a ClustSeg detector (e.g. a superpixel config)
        sys.exit(f'error: --task {args.task} needs a panoptic / instance config: {err}')
    meta = detector_dataset_meta(model)
    if args.task == 'panoptic':
        if 'pred_panoptic_seg' not in sample:
            sys.exit(f'error: {args.config} gives no panoptic prediction '
                     '(model.test_cfg.panoptic_on is False); use --task instance')
        if 'pred_instances' in sample:  # draw the panoptic segments only
            del sample.pred_instances
        ids = np.unique(sample.pred_panoptic_seg.sem_seg.numpy())
        ids = ids[ids != len(meta['classes'])]  # void
        things = int((ids >= INSTANCE_OFFSET).sum())
        summary = f'{len(ids)} segments ({things} things, {len(ids) - things} stuff)'
    else:
        if 'pred_instances' not in sample:
            sys.exit(f'error: {args.config} gives no instance prediction '
                     '(model.test_cfg.instance_on is False); use --task panoptic')
        if 'pred_panoptic_seg' in sample:
            del sample.pred_panoptic_seg
        kept = int((sample.pred_instances.scores > args.score_thr).sum())
        summary = f'{kept} instances with score > {args.score_thr}'
    visualizer = ClustSegDetVisualizer(name=f'clustseg_demo_{args.task}')
    visualizer.dataset_meta = meta
    visualizer.add_datasample('demo', np.ascontiguousarray(img[..., ::-1]), sample,
                              draw_gt=False, pred_score_thr=args.score_thr,
                              out_file=args.out_file)
    print(f'{summary} -> {args.out_file}')


def draw_semantic(args, model, img):
    """Semantic class map of ``img`` (H x W x 3 BGR) blended over it -> ``out_file`` (drawn by
    mmseg's SegLocalVisualizer, at the image's size)."""
    from mmseg.visualization import SegLocalVisualizer

    from clustseg.apis.inference import inference_segmentor, segmentor_dataset_meta
    try:
        sample = inference_segmentor(model, img, img_path=args.img)
    except TypeError as err:  # not a ClustSeg semantic model
        sys.exit(f'error: --task semantic needs a semantic config: {err}')
    meta = segmentor_dataset_meta(model)
    visualizer = SegLocalVisualizer(name='clustseg_demo_semantic', alpha=args.opacity)
    visualizer.dataset_meta = meta
    visualizer.add_datasample('demo', np.ascontiguousarray(img[..., ::-1]), sample,
                              draw_gt=False, out_file=args.out_file)
    ids = np.unique(sample.pred_sem_seg.data.numpy())
    names = ', '.join(meta['classes'][i] for i in ids[:8]) + (' ...' if len(ids) > 8 else '')
    print(f'{len(ids)} classes ({names}) -> {args.out_file}')


def main(argv=None):
    args = parse_args(argv)
    for what, path in (('image', args.img), ('config', args.config),
                       ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            sys.exit(f'error: {what} file not found: {path}')
    if args.num_superpixels is not None and args.num_superpixels < 1:
        sys.exit(f'error: --num-superpixels must be >= 1, got {args.num_superpixels}')
    if args.score_thr is not None and not 0.0 <= args.score_thr <= 1.0:
        sys.exit(f'error: --score-thr must be in [0, 1], got {args.score_thr}')
    if args.opacity is not None and not 0.0 <= args.opacity <= 1.0:
        sys.exit(f'error: --opacity must be in [0, 1], got {args.opacity}')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        sys.exit(f'error: --device {args.device}, but torch sees no CUDA device here; use '
                 '--device cpu')

    try:  # read as the dataset pipeline does (LoadImageChecked); a bad file names itself
        img = read_image(args.img)
    except BadInputError as err:
        sys.exit(f'error: bad input image: {err}')

    try:
        model = init_model(args.config, device=args.device, cfg_options=args.cfg_options)
    except (ConfigOptionError, KeyError) as err:  # a bad option; an unknown test_cfg key
        sys.exit(f'error: {err.args[0] if isinstance(err, KeyError) else err}')
    args.task = resolve_task(args, model)  # before the checkpoint: a task error names it
    apply_task_options(args, args.task)
    try:
        load_model_checkpoint(model, args.checkpoint, partial_load=args.partial_load)
    except ModelCheckError as err:
        # the demo's own option instead of the tools' / the API's hint
        sys.exit(f'error: {str(err).split(" To load the matching part")[0]} To load the '
                 'matching part anyway, pass --partial-load')
    if args.out_file is None:
        args.out_file = DEFAULT_OUT[args.task]
    if args.task == 'superpixel':
        draw_superpixels(args, model, img)
    elif args.task == 'semantic':
        draw_semantic(args, model, img)
    else:
        draw_detections(args, model, img)


if __name__ == '__main__':
    main()
