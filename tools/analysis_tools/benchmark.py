"""Compare the speed and memory of models built from configs, in one run.

    python tools/analysis_tools/benchmark.py CONFIG [CONFIG ...] [--variant LABEL=CONFIG[,K=V...]]
        [--infer-size H W] [--train-size S] [--batch B] [--warmup N] [--iters N]
        [--amp {none,fp16,bf16}] [--cfg-options K=V ...] [--out results.json]

For every model (a positional CONFIG, labelled by its file name, or a ``--variant``):

* inference: ``model.test_step`` (data preprocessor + forward + post-processing, e.g. mmdet's
  panoptic fusion) on one real image resized to ``--infer-size H W``, after ``--warmup``
  iterations, over ``--iters`` iterations: ms/img and images/s;
* training: seconds per ``model.train_step(data, optim_wrapper)`` (forward, backward and the
  config's optimizer step, as mmengine's loop does) on ``--batch`` real images with their
  ground truth, resized to ``--train-size S`` x S;
* peak memory of each phase: ``torch.cuda.max_memory_allocated`` on CUDA, the peak resident set
  size of the process on CPU. Every (model, phase) runs in a fresh subprocess of this script
  (one at a time), so each peak is that model's own;
* the number of parameters.

Data: the real images and annotations of tests/data (COCO panoptic or instance, after the
config's dataset type), loaded by the config's own dataset class and loading transforms, then
resized (no ratio kept) and packed; the model's data preprocessor pads. A ``BatchFixedSizePad``
batch augmentation (mmdet's Mask2Former pads to 1024 x 1024) is set to the train size, so that
all models see the same S x S input. Weights are random (``init_cfg`` of type ``Pretrained``
removed), seeds fixed.

``--host-malloc``: on CPU the workers keep freed host memory mapped as ``tools/train.py`` and
``tools/test.py`` do (``keep``, the default; :func:`clustseg.utils.keep_freed_host_memory`) or
run with the C library's defaults (``default``); every model of a run gets the same.

``--amp``: training under mmengine's ``AmpOptimWrapper`` (CUDA) or ClustSeg's
``AutocastOptimWrapper`` (CPU, bf16 only), inference under ``torch.autocast``. A phase that fails
(e.g. an op without a kernel for the dtype) is reported as n/a with the reason; the others run.

Writes a markdown table on stdout and, with ``--out``, the numbers as JSON.
"""
import argparse
import contextlib
import json
import math
import os
import os.path as osp
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import traceback
from copy import deepcopy

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RESULT_MARK = 'BENCHMARK_RESULT '
AMP_DTYPES = dict(fp16='float16', bf16='bfloat16')
# Where the real data of each task lives (data_root / ann_file / data_prefix are read there).
EMBEDDED_DATA = dict(
    panoptic='configs/_base_/datasets/coco_panoptic_embedded.py',
    instance='configs/_base_/datasets/coco_instance_embedded.py',
    ade20k='configs/_base_/datasets/ade20k_embedded.py',
    coco_stuff='configs/_base_/datasets/coco_stuff_embedded.py')


class BenchmarkError(Exception):
    """A user error (bad config, option or argument), reported without a traceback."""


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

# A comma followed by `key=`: separates the options of a --variant (values may hold commas).
_OPTION_SPLIT = re.compile(r',(?=\s*[A-Za-z_][\w.]*\s*=)')


def parse_value(text):
    """A --cfg-options value, parsed as mmengine's DictAction does (ints, floats, bools, None,
    lists / tuples)."""
    from mmengine.config import DictAction
    return DictAction._parse_iterable(text)


def parse_options(items):
    """['a.b=1', ...] -> {'a.b': 1, ...}."""
    options = {}
    for item in items or []:
        if '=' not in item:
            raise BenchmarkError(f'option {item!r} is not KEY=VALUE')
        key, value = item.split('=', 1)
        options[key.strip()] = parse_value(value.strip())
    return options


def parse_variant(text):
    """'LABEL=CONFIG[,KEY=VALUE...]' -> dict(label, config, options)."""
    if '=' not in text:
        raise BenchmarkError(f'--variant {text!r}: expected LABEL=CONFIG[,KEY=VALUE...]')
    label, rest = text.split('=', 1)
    parts = _OPTION_SPLIT.split(rest)
    if not label.strip() or not parts[0].strip():
        raise BenchmarkError(f'--variant {text!r}: expected LABEL=CONFIG[,KEY=VALUE...]')
    return dict(label=label.strip(), config=parts[0].strip(), options=parse_options(parts[1:]))


def config_label(config):
    return osp.splitext(osp.basename(config.split('::')[-1]))[0]


def build_parser():
    p = argparse.ArgumentParser(
        description='Speed / memory / size of models built from configs, one table.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Examples:\n'
        '  %(prog)s configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py \\\n'
        '      mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py --out r.json\n'
        '  %(prog)s --variant T1=configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py,'
        'model.panoptic_head.decoder.num_iters=1 \\\n'
        '      --variant T3=configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py\n'
        'A config is a path or an mmengine alias (mmdet::mask2former/....py).')
    p.add_argument('configs', nargs='*', metavar='CONFIG',
                   help='configs to compare (labelled by their file name)')
    p.add_argument('--variant', action='append', default=[], metavar='LABEL=CONFIG[,K=V...]',
                   help='a labelled model with its own config options, e.g. '
                   'T1=configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py,'
                   'model.panoptic_head.decoder.num_iters=1 (repeatable; listed after the '
                   'positional configs)')
    p.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                   help='options applied to every config (each key must exist in each config)')
    p.add_argument('--device', choices=['auto', 'cpu', 'cuda'], default='auto',
                   help='default: cuda when available')
    p.add_argument('--infer-size', nargs=2, type=int, metavar=('H', 'W'),
                   help='inference input size (default 800 1333 on cuda, 512 512 on cpu)')
    p.add_argument('--train-size', type=int, metavar='S',
                   help='training input size S x S (default 1024 on cuda, 512 on cpu)')
    p.add_argument('--batch', type=int, default=2, help='training batch size (default 2)')
    p.add_argument('--warmup', type=int, default=5, help='untimed iterations first (default 5)')
    p.add_argument('--iters', type=int, default=20, help='timed iterations (default 20)')
    p.add_argument('--amp', choices=['none', 'fp16', 'bf16'], default='none',
                   help='mixed precision of both phases (default none = fp32)')
    p.add_argument('--phases', nargs='+', choices=['infer', 'train'], default=['infer', 'train'])
    p.add_argument('--msda', choices=['auto', 'kernel', 'pytorch'], default='auto',
                   help="mmcv's MultiScaleDeformableAttention (Mask2Former's pixel decoder) on "
                   'CUDA: its CUDA kernel, or its pure-PyTorch path; auto (default): the kernel '
                   'when mmcv was compiled with CUDA ops, else the PyTorch path (noted in the '
                   'output). On CPU mmcv always runs the PyTorch path')
    p.add_argument('--threads', type=int, help='torch.set_num_threads in the workers')
    p.add_argument('--host-malloc', choices=['keep', 'default'], default='keep',
                   help='CPU only: keep freed host memory mapped, as tools/train.py and '
                   "tools/test.py do on CPU (keep, default), or the C library's defaults")
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--profile', metavar='DIR',
                   help="also profile the timed iterations (torch.profiler, CPU time) and write "
                   "DIR/<label>_<phase>.txt: the time by stage (the model's top-level modules "
                   "and the head's pixel decoder / decoder / mask predictor) and by the head's "
                   "loss functions, then the top operators")
    p.add_argument('--gpu-code-paths', action='store_true',
                   help="CPU: take the code paths a CUDA run takes where they differ (a decoder "
                   "level's E-step losses stacked, STACK_E_STEPS; all E-steps of an image "
                   "matched at once, MATCH_CHUNK_ELEMENTS; AdamW's multi-tensor foreach update "
                   "when not fused), so that --count-ops counts what a GPU run dispatches; the "
                   "timings are then not the CPU's best")
    p.add_argument('--count-ops', action='store_true',
                   help='after the timed iterations, run one more under an operator counter: '
                   'the aten operators dispatched per image (inference) or per training step '
                   '(forward, backward, optimizer), and of them those whose output size '
                   'depends on the data (nonzero, boolean indexing, unique: each one a '
                   'device-to-host read on a GPU); a column of the table and ops in the JSON')
    p.add_argument('--cuda-graph', action='store_true',
                   help='inference, CUDA, mmdet MaskFormer-family models (panoptic_head): '
                   "capture the network part of an image's inference (extract_feat and the "
                   "head's forward) in a CUDA graph once and replay it for every image, the "
                   'post-processing running eagerly (fp32 only). A model whose forward reads '
                   'the device or copies from the host cannot be captured: its error is the '
                   'result')
    p.add_argument('--out', help='write the results as JSON to this file')
    p.add_argument('--worker', help=argparse.SUPPRESS)  # internal: one (model, phase), JSON
    p.add_argument('--worker-jobs', help=argparse.SUPPRESS)  # internal: a JSON list of jobs
    return p


def parse_args(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.worker is not None or args.worker_jobs is not None:
        return args
    device = args.device
    if device == 'auto':
        import torch
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    args.device = device
    if args.infer_size is None:
        args.infer_size = [800, 1333] if device == 'cuda' else [512, 512]
    if args.train_size is None:
        args.train_size = 1024 if device == 'cuda' else 512
    for name in ('batch', 'iters', 'train_size'):
        if getattr(args, name) < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1')
    if min(args.infer_size) < 1 or args.warmup < 0:
        p.error('--infer-size must be positive and --warmup >= 0')
    if args.gpu_code_paths and device != 'cpu':
        p.error('--gpu-code-paths is for --device cpu (a GPU takes them anyway)')
    if args.cuda_graph and (device != 'cuda' or args.amp != 'none'):
        p.error('--cuda-graph needs --device cuda and --amp none')
    try:
        args.specs = [dict(label=config_label(c), config=c, options={}) for c in args.configs]
        args.specs += [parse_variant(v) for v in args.variant]
        args.global_options = parse_options(args.cfg_options)
    except BenchmarkError as e:
        p.error(str(e))
    if not args.specs:
        p.error('give at least one CONFIG or --variant')
    if args.profile:
        args.profile = osp.abspath(args.profile)  # the workers run in the repository root
    labels = [s['label'] for s in args.specs]
    if len(set(labels)) != len(labels):
        p.error(f'labels must be unique, got {labels}: use --variant LABEL=CONFIG')
    return args


# ---------------------------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------------------------

def _walk(cfg, key, config, new_leaf=False):
    """Check that the dotted ``key`` exists in ``cfg`` (list items by index); with
    ``new_leaf``, its last part may be new (an argument of a class the options switch to)."""
    from clustseg.utils.cfg_options import walk_config
    parts = key.split('.')
    n = walk_config(cfg, key)[1]
    if n < len(parts) - (1 if new_leaf else 0):
        where = '.'.join(parts[:n]) or 'the config'
        raise BenchmarkError(f'unknown config key {key!r} in {config}: {where} has no '
                             f'{parts[n]!r}')


def _drop_pretrained(node):
    """Remove every ``init_cfg`` that loads weights (no downloads: random init)."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained' or \
                isinstance(init, list) and any(i.get('type') == 'Pretrained' for i in init):
            node['init_cfg'] = None
        if isinstance(node.get('pretrained'), str):
            node['pretrained'] = None
        for v in node.values():
            _drop_pretrained(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _drop_pretrained(v)


def load_config(spec, global_options):
    """The config of a model spec with its options (every key must exist), random init."""
    from mmengine.config import Config
    path = spec['config']
    if '::' in path:  # mmengine alias, e.g. mmdet::mask2former/....py
        try:
            path, _ = Config._get_cfg_path(path, '')
        except Exception as e:
            raise BenchmarkError(f'cannot find config {path}: {type(e).__name__}: {e}')
        if not osp.isfile(path):
            raise BenchmarkError(f'config file not found: {spec["config"]} ({path})')
    else:
        path = path if osp.isabs(path) or osp.exists(path) else osp.join(REPO_ROOT, path)
        if not osp.isfile(path):
            raise BenchmarkError(f'config file not found: {spec["config"]}')
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # e.g. an unknown mmdet:: alias, a syntax error
        raise BenchmarkError(f'cannot read config {spec["config"]}: {type(e).__name__}: {e}')
    options = {**global_options, **spec['options']}
    for key in options:
        # an option that sets a dict's ``type`` may bring that class's own arguments
        _walk(cfg, key, spec['config'], new_leaf=key.rsplit('.', 1)[0] + '.type' in options)
    cfg.merge_from_dict(options)
    _drop_pretrained(cfg.model)
    fusion = cfg.model.get('panoptic_fusion_head') or {}
    if fusion.get('semantic_map') and 'model.panoptic_fusion_head.semantic_map' not in options:
        # the dense semantic map only serves the mIoU_pan evaluation; mmdet's Mask2Former
        # fusion makes none, so inference is compared without it (an option can set it)
        fusion['semantic_map'] = False
    return cfg


# ---------------------------------------------------------------------------------------------
# Tasks: how to make real data and set up the model of a family of configs
# ---------------------------------------------------------------------------------------------

class _Task:
    """What the task families share: the config's (unwrapped) train dataset and its own
    loading transforms. ``kind`` names the embedded data (``EMBEDDED_DATA``) of the family."""

    def __init__(self, cfg):
        self.cfg = cfg
        dataset = cfg.train_dataloader.dataset
        while 'dataset' in dataset:  # wrappers (RepeatDataset, ...)
            dataset = dataset.dataset
        self.dataset_cfg = deepcopy(dataset)
        self.kind = self.kind_of(dataset.type)
        if self.kind is None or dataset.get('metainfo'):
            why = (f'its train dataset ({dataset.type}) is none of them' if self.kind is None
                   else "its train dataset sets its own classes (metainfo), which the "
                   "embedded samples' annotations do not use")
            raise BenchmarkError(
                f'{cfg.filename}: the benchmark measures on the embedded real samples of '
                f'{", ".join(sorted(EMBEDDED_DATA))} (tests/data), and {why}')

    def _loaders(self):
        """The config's own image and annotation loading transforms (copies)."""
        pipeline = self.dataset_cfg.pipeline
        image = [t for t in pipeline if t['type'].startswith('LoadImage')]
        ann = [t for t in pipeline if 'Annotations' in t['type'] and t['type'].startswith('Load')]
        if not image or not ann:
            raise BenchmarkError(f'train pipeline of {self.cfg.filename} has no image / '
                                 'annotation loading transform')
        return dict(image[0]), dict(ann[0])


class DetTask(_Task):
    """mmdet detectors (panoptic / instance): real COCO images of tests/data."""

    scope = 'mmdet'

    @staticmethod
    def kind_of(dataset_type):
        if 'Panoptic' in dataset_type:
            return 'panoptic'
        return 'instance' if 'Coco' in dataset_type else None

    def _loaders(self):
        image, ann = super()._loaders()
        image = dict(image, to_float32=True)
        ann = dict(ann, with_bbox=True, with_mask=True)
        if self.kind == 'panoptic':
            ann['with_seg'] = True
        return image, ann

    def _dataset(self, pipeline):
        from mmdet.registry import DATASETS
        from mmengine.config import Config
        data = Config.fromfile(osp.join(REPO_ROOT, EMBEDDED_DATA[self.kind]))
        real = data.train_dataloader.dataset
        ds = deepcopy(self.dataset_cfg)
        ds.update(data_root=osp.join(REPO_ROOT, real.data_root), ann_file=real.ann_file,
                  data_prefix=real.data_prefix, pipeline=pipeline, backend_args=None)
        return DATASETS.build(ds)

    def train_samples(self, size, n):
        image, ann = self._loaders()
        pipeline = [image, ann, dict(type='Resize', scale=(size, size), keep_ratio=False)]
        if self.kind == 'instance':
            pipeline.append(dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5),
                                 by_mask=True))
        ds = self._dataset(pipeline + [dict(type='PackDetInputs')])
        return [ds[i % len(ds)] for i in range(n)]

    def test_samples(self, hw, n):
        image, _ = self._loaders()
        image = dict(image, to_float32=False)
        pipeline = [image, dict(type='Resize', scale=(hw[1], hw[0]), keep_ratio=False),
                    dict(type='PackDetInputs')]
        ds = self._dataset(pipeline)
        return [ds[i] for i in range(min(n, len(ds)))]

    def prepare_model_cfg(self, train_size):
        """Fixed-size batch padding (mmdet's Mask2Former: 1024) set to the train size."""
        notes = []
        for aug in self.cfg.model.get('data_preprocessor', {}).get('batch_augments') or []:
            if aug['type'] == 'BatchFixedSizePad':
                aug['size'] = (train_size, train_size)
                notes.append(f'BatchFixedSizePad size -> {train_size}')
        return notes


class SegTask(_Task):
    """mmseg segmentors (semantic): the real ADE20K / COCO-Stuff images of tests/data (the
    ones of the config's dataset type), resized to the requested sizes."""

    scope = 'mmseg'

    @staticmethod
    def kind_of(dataset_type):
        if 'ADE20K' in dataset_type:
            return 'ade20k'
        return 'coco_stuff' if 'COCOStuff' in dataset_type else None

    def _dataset(self, pipeline):
        from mmengine.config import Config
        from mmseg.registry import DATASETS
        data = Config.fromfile(osp.join(REPO_ROOT, EMBEDDED_DATA[self.kind]))
        real = data.train_dataloader.dataset
        ds = deepcopy(self.dataset_cfg)
        ds.update(data_root=osp.join(REPO_ROOT, real.data_root), data_prefix=real.data_prefix,
                  pipeline=pipeline)
        for key in ('ann_file', 'img_suffix', 'seg_map_suffix'):
            if key in real:
                ds[key] = real[key]
        return DATASETS.build(ds)

    def train_samples(self, size, n):
        image, ann = self._loaders()
        ds = self._dataset([image, ann, dict(type='Resize', scale=(size, size),
                                             keep_ratio=False), dict(type='PackSegInputs')])
        return [ds[i % len(ds)] for i in range(n)]

    def test_samples(self, hw, n):
        image, _ = self._loaders()
        ds = self._dataset([image, dict(type='Resize', scale=(hw[1], hw[0]), keep_ratio=False),
                            dict(type='PackSegInputs')])
        return [ds[i % len(ds)] for i in range(n)]

    def prepare_model_cfg(self, train_size):
        """Fixed-size batch padding (mmseg's ``data_preprocessor.size``) set to the train
        size; whole-image inference."""
        notes = []
        pre = self.cfg.model.get('data_preprocessor', {})
        if pre.get('size') is not None:
            pre['size'] = (train_size, train_size)
            notes.append(f'data_preprocessor.size -> {train_size}')
        if self.cfg.model.get('test_cfg', {}).get('mode', 'whole') != 'whole':
            self.cfg.model.test_cfg = dict(mode='whole')
            notes.append('test_cfg.mode -> whole')
        return notes


TASKS = dict(mmdet=DetTask, mmseg=SegTask)


def make_task(cfg):
    scope = cfg.get('default_scope')
    if scope not in TASKS:
        raise BenchmarkError(f'{cfg.filename}: default_scope={scope!r} is not supported yet '
                             f'(supported: {sorted(TASKS)})')
    return TASKS[scope](cfg)


# ---------------------------------------------------------------------------------------------
# Worker: one (model, phase) in its own process
# ---------------------------------------------------------------------------------------------

_MSDA_PROBE = """
import torch
from mmcv.ops.multi_scale_deform_attn import MultiScaleDeformableAttnFunction as F
v = torch.rand(1, 4, 1, 2, device='cuda')  # batch x keys x heads x dims
shapes = torch.tensor([[2, 2]], device='cuda')
start = torch.tensor([0], device='cuda')
loc = torch.rand(1, 1, 1, 1, 1, 2, device='cuda')
w = torch.ones(1, 1, 1, 1, 1, device='cuda')
F.apply(v, shapes, start, loc, w, 64)
torch.cuda.synchronize()
print('msda-kernel-ok')
"""


def mmcv_has_cuda_ops():
    """Whether mmcv's deformable-attention CUDA kernel runs here. Probed by running it on tiny
    tensors in a subprocess: on the GPU machine, mmcv's ``get_compiling_cuda_version()``
    crashed the process (segmentation fault), so the parent must not call into mmcv's
    extension itself."""
    import torch
    if not torch.cuda.is_available():
        return False
    try:
        proc = subprocess.run([sys.executable, '-c', _MSDA_PROBE], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0 and 'msda-kernel-ok' in proc.stdout


def resolve_msda(choice, device):
    """Which implementation of mmcv's MultiScaleDeformableAttention the workers use."""
    if device != 'cuda':
        return 'pytorch'
    if choice == 'auto':
        return 'kernel' if mmcv_has_cuda_ops() else 'pytorch'
    return choice


def _sync(device):
    import torch
    if device == 'cuda':
        torch.cuda.synchronize()


def _rss_mb():
    """Current resident set size (MB), Linux."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == 'darwin' else peak / 1024  # bytes / KiB


def _timed(fn, device, warmup, iters):
    for i in range(warmup):
        fn(i)
    times = []
    for i in range(iters):
        _sync(device)
        start = time.perf_counter()
        fn(warmup + i)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


#: --count-ops: operators whose output size depends on the values (a host read on a GPU)
DATA_DEPENDENT_OPS = ('aten::nonzero', 'aten::masked_select', 'aten::_unique2',
                      'aten::unique_dim', 'aten::unique_consecutive')


def count_ops(fn):
    """Run ``fn()`` under a dispatch mode that counts the aten operators it dispatches (the
    autograd engine's too) -> ``dict(ops, view_ops, data_dependent_ops, top)``: all
    operators; the views among them (an output aliasing an input without writing it: view,
    transpose, detach, ...: metadata only, no kernel on a GPU); those of
    :data:`DATA_DEPENDENT_OPS` or indexing with a boolean mask; the 15 most frequent."""
    import collections

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counter(TorchDispatchMode):

        def __init__(self):
            super().__init__()
            self.ops = collections.Counter()
            self.data_dependent = 0
            self.views = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func._schema.name
            self.ops[name] += 1
            if any(r.alias_info is not None and not r.alias_info.is_write
                   for r in func._schema.returns):
                self.views += 1
            if name in DATA_DEPENDENT_OPS or (
                    name in ('aten::index', 'aten::index_put_',
                             'aten::index_put') and len(args) > 1 and
                    any(isinstance(i, torch.Tensor) and i.dtype == torch.bool
                        for i in (args[1] or []))):
                self.data_dependent += 1
            return func(*args, **(kwargs or {}))

    counter = Counter()
    with counter:
        fn()
    return dict(ops=sum(counter.ops.values()), view_ops=counter.views,
                data_dependent_ops=counter.data_dependent, top=counter.ops.most_common(15))


#: --profile: the head methods given a profiler scope (those of the head that match)
PROFILE_METHODS = re.compile(r'^_?(loss\w*|\w*_losse?s?|\w*assign\w*|\w*targets\w*|\w*points|\w*draws)$')


def _scoped(fn, name):
    import torch

    def wrapped(*args, **kwargs):
        with torch.profiler.record_function(name):
            return fn(*args, **kwargs)
    return wrapped


def add_profile_scopes(model):
    """Give the profiler one scope per stage and per loss function of ``model`` (instance
    attributes that shadow the class's methods; for a throw-away benchmark model only):
    ``stage:<name>`` for the model's top-level modules and, inside a head, its children and
    those of its clustering core (``panoptic_head.core.decoder``); ``loss:<Head>.<method>``
    for the head's methods matched by ``PROFILE_METHODS``. Returns the scope names."""
    names = []
    for qual, module in model.named_modules():
        depth = qual.count('.') + 1 if qual else 0
        in_head = qual.split('.')[0].endswith('head')
        if depth == 1 or (in_head and (depth == 2 or (depth == 3 and '.core.' in qual))):
            module.forward = _scoped(module.forward, f'stage:{qual}')
            names.append(f'stage:{qual}')
        if depth == 1 and in_head:
            for attr in sorted(dir(type(module))):
                if PROFILE_METHODS.match(attr) and callable(getattr(type(module), attr)):
                    name = f'loss:{type(module).__name__}.{attr}'
                    setattr(module, attr, _scoped(getattr(module, attr), name))
                    names.append(name)
    return names


def write_profile(prof, scopes, iters, path, title, device=False):
    """The profile of ``iters`` iterations as a text table per iteration: the scopes of
    ``add_profile_scopes`` (total CPU time, children included; a scope run again in backward,
    e.g. a loss recomputed by activation checkpointing, counts both), then the 30 operators
    with the most self CPU time. With ``device=True`` (a CUDA profile) each scope also gets the
    GPU kernel time of the operators run inside it and its span on the GPU timeline (first
    kernel to last, idle gaps included: a span far above the kernel time means the GPU waited
    for the CPU), each operator its own kernels' time, and the operators are ranked by it."""
    from torch.autograd import DeviceType
    events = prof.key_averages()
    host, spans = {}, {}  # the CPU-side events; the GPU-side ranges of the scopes
    for e in events:
        if getattr(e, 'device_type', DeviceType.CPU) == DeviceType.CPU:
            host[e.key] = e
        elif e.key in scopes:
            spans[e.key] = e
    step = sum(e.self_cpu_time_total for e in host.values()) / iters / 1000  # ms / iteration
    lines = [title, f'CPU time per iteration (sum of self times): {step:.1f} ms']
    dev_step = 0.0
    if device:  # the kernels each CPU operator launched, summed once
        dev_step = sum(e.self_device_time_total for e in host.values()) / iters / 1000
        lines.append(f'GPU kernel time per iteration (sum over operators): {dev_step:.1f} ms')
    lines += ['', '| scope | calls / iter | total ms / iter | % of iteration |' +
              (' GPU kernel ms / iter | GPU span ms / iter |' if device else ''),
              '|---|---:|---:|---:|' + ('---:|---:|' if device else '')]

    def ms(value):
        return value / iters / 1000

    for name in sorted(scopes, key=lambda n: -(host[n].cpu_time_total if n in host else 0)):
        e = host.get(name)
        if e is None:
            continue
        row = f'| {name} | {e.count / iters:g} | {ms(e.cpu_time_total):.1f} | ' \
              f'{100 * ms(e.cpu_time_total) / step:.1f} |'
        if device:
            span = spans.get(name)
            row += f' {ms(e.device_time_total):.1f} | ' + \
                (f'{ms(span.device_time_total):.1f} |' if span is not None else 'n/a |')
        lines.append(row)
    lines += ['', '| operator | calls / iter | self ms / iter | % of iteration |' +
              (' GPU kernel ms / iter | % of GPU kernel time |' if device else ''),
              '|---|---:|---:|---:|' + ('---:|---:|' if device else '')]
    rank = (lambda e: -e.self_device_time_total) if device else (lambda e: -e.self_cpu_time_total)
    for e in sorted((e for k, e in host.items() if k not in scopes), key=rank)[:30]:
        row = f'| {e.key} | {e.count / iters:g} | {ms(e.self_cpu_time_total):.1f} | ' \
              f'{100 * ms(e.self_cpu_time_total) / step:.1f} |'
        if device:
            dev = ms(e.self_device_time_total)
            row += f' {dev:.1f} | {100 * dev / dev_step if dev_step else 0:.1f} |'
        lines.append(row)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')


def _profiled_timed(step, job, model):
    """``_timed``; with ``job['profile']`` (a folder) the timed iterations also run under
    torch.profiler (CPU activities, and CUDA ones on a GPU) and its table goes to ``DIR/<label>_<phase>.txt`` (the
    times then include the profiler's overhead: the result says ``profiled``)."""
    if not job.get('profile'):
        return _timed(step, job['device'], job['warmup'], job['iters'])
    import torch
    scopes = add_profile_scopes(model)
    for i in range(job['warmup']):
        step(i)
    cuda = job['device'] == 'cuda'
    activities = [torch.profiler.ProfilerActivity.CPU] + \
        ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=activities) as prof:
        # the timed iterations' own inputs (indices after the warm-up ones), as _timed does
        times = _timed(lambda i: step(job['warmup'] + i), job['device'], 0, job['iters'])
    label = re.sub(r'[^\w.-]+', '_', job['spec']['label'])
    write_profile(prof, scopes, job['iters'],
                  osp.join(job['profile'], f"{label}_{job['phase']}.txt"),
                  f"{job['spec']['label']} {job['phase']} ({job['device']}, "
                  f"{job['iters']} profiled iterations, {1000 * sum(times) / len(times):.0f} "
                  "ms per iteration; times include the profiler's overhead)", device=cuda)
    return times


class CudaGraphRunner:
    """Captures a function's CUDA work once (after warm-up runs on a side stream, as PyTorch
    requires) and replays it: ``capture(fn)`` returns ``fn()``'s outputs, which every
    ``replay()`` recomputes in place and returns."""

    def capture(self, fn):
        import torch
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn()
        return self.outputs

    def replay(self):
        self.graph.replay()
        return self.outputs


def capture_inference(model, batch, runner) -> None:
    """``--cuda-graph``: ``model.extract_feat`` and its ``panoptic_head``'s forward, run on
    ``batch``'s preprocessed inputs, are captured by ``runner`` (:class:`CudaGraphRunner`; a
    test passes one that reruns eagerly). Then ``model.extract_feat`` copies its input into the
    captured input and the head's forward returns ``runner.replay()``, so that
    ``model.test_step`` replays the network and runs the post-processing eagerly. For inputs of
    the captured size and padding (the benchmark's images are resized to one size)."""
    import torch
    head = getattr(model, 'panoptic_head', None)
    if head is None:
        raise BenchmarkError(f'--cuda-graph: {type(model).__name__} has no panoptic_head '
                             '(mmdet MaskFormer-family models only)')
    data = model.data_preprocessor(batch, False)
    static_in = data['inputs'].clone()
    samples = data['data_samples']
    extract_feat, forward = model.extract_feat, head.forward
    with torch.no_grad():
        runner.capture(lambda: forward(extract_feat(static_in), samples))

    def copy_in(inputs):
        if inputs.shape != static_in.shape:
            raise BenchmarkError(f'--cuda-graph: captured for inputs {tuple(static_in.shape)}, '
                                 f'got {tuple(inputs.shape)}')
        static_in.copy_(inputs)
        return static_in  # what the head's forward would get; the replay reads static_in

    model.extract_feat = copy_in
    head.forward = lambda x, data_samples: runner.replay()


#: what :func:`post_processing_load` records per inference cell (the kinds the results have)
POST_KEYS = ('post_instances', 'post_nonempty_instances', 'post_segments')


def post_processing_load(samples, void=None) -> dict:
    """Mean number of what the post-processing produced per image (mmdet's fusion head):
    ``post_instances`` (instance predictions; mmdet's ``mask2bbox`` reads each one's mask on
    the host), ``post_nonempty_instances`` (those with a non-empty mask) and
    ``post_segments`` (panoptic segments other than ``void``, the fusion head's
    ``num_classes``; each kept query is a few host reads); only the kinds the results have.
    With random weights these counts depend on the draw (e.g. how many masks are empty), so
    two models' inference times compare only at equal loads."""
    import numpy as np
    load = {}
    inst = [s.pred_instances for s in samples if 'pred_instances' in s]
    if inst:
        load['post_instances'] = float(np.mean([len(i) for i in inst]))
        # an empty mask skips mask2bbox's box read (4 host reads each on a GPU)
        load['post_nonempty_instances'] = float(np.mean(
            [int(i.masks.flatten(1).any(1).sum()) if len(i) else 0 for i in inst]))
    segs = []
    for s in samples:
        if 'pred_panoptic_seg' in s:
            ids = np.unique(s.pred_panoptic_seg.sem_seg.cpu().numpy())
            segs.append(int(np.sum(ids != void)))
    if segs:
        load['post_segments'] = float(np.mean(segs))
    return load


def _optim_wrapper_cfg(cfg, amp, device):
    wrapper = deepcopy(cfg.optim_wrapper)
    if amp == 'none':
        return wrapper
    if wrapper.get('type', 'OptimWrapper') != 'OptimWrapper':
        raise BenchmarkError(f'--amp needs optim_wrapper.type=OptimWrapper, got {wrapper.type}')
    if device == 'cuda':
        wrapper.update(type='AmpOptimWrapper', dtype=AMP_DTYPES[amp], loss_scale='dynamic')
    elif amp == 'fp16':
        raise BenchmarkError('fp16 training needs CUDA (loss scaling); use --amp bf16 on CPU')
    else:
        wrapper.update(type='AutocastOptimWrapper', dtype='bfloat16')
    return wrapper


@contextlib.contextmanager
def gpu_code_paths(enabled: bool = True):
    """``--gpu-code-paths``: within the block the CPU takes the CUDA entries of the head's
    per-device choices (:data:`~clustseg.models.heads.clustseg_head.STACK_E_STEPS`,
    :data:`~clustseg.models.heads.clustseg_head.MATCH_CHUNK_ELEMENTS`); restored after."""
    import clustseg.models.heads.clustseg_head as head
    tables = (head.STACK_E_STEPS, head.MATCH_CHUNK_ELEMENTS)
    saved = [t['cpu'] for t in tables]
    if enabled:
        for t in tables:
            t['cpu'] = t['cuda']
    try:
        yield
    finally:
        for t, v in zip(tables, saved):
            t['cpu'] = v


def run_worker(job):
    """Build the model of ``job['spec']`` and time ``job['phase']``; a JSON-able dict."""
    with gpu_code_paths(bool(job.get('gpu_code_paths'))):
        return _run_worker(job)


def _run_worker(job):
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmengine.runner import set_random_seed

    from clustseg.utils import keep_freed_host_memory, register_all_modules

    if job.get('threads'):
        torch.set_num_threads(job['threads'])
    device, phase, amp = job['device'], job['phase'], job['amp']
    if device == 'cpu' and job.get('host_malloc') == 'keep':
        keep_freed_host_memory()
    if job.get('msda') == 'pytorch' and device == 'cuda':
        # mmcv takes its CUDA-kernel branch iff this flag is set (and the tensor is on CUDA)
        import mmcv.ops.multi_scale_deform_attn as msda
        msda.IS_CUDA_AVAILABLE = False
    cfg = load_config(job['spec'], job['global_options'])
    task = make_task(cfg)
    register_all_modules(init_default_scope=False)
    result = dict(phase=phase)
    with DefaultScope.overwrite_default_scope(task.scope):
        from mmengine.registry import MODELS
        notes = task.prepare_model_cfg(job['train_size'])
        set_random_seed(job['seed'])
        if phase == 'infer':
            samples = task.test_samples(job['infer_size'], job['iters'] + job['warmup'])
        else:
            samples = task.train_samples(job['train_size'], job['batch'])
        rss_base = _rss_mb()
        model = MODELS.build(cfg.model)
        model.init_weights()
        model.to(device)
        result.update(
            params_m=sum(p.numel() for p in model.parameters()) / 1e6,
            trainable_params_m=sum(p.numel() for p in model.parameters()
                                   if p.requires_grad) / 1e6,
            model_type=type(model).__name__, notes=notes)
        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
        if phase == 'infer':
            model.eval()
            batches = [pseudo_collate([s]) for s in samples]
            dtype = getattr(torch, AMP_DTYPES[amp]) if amp != 'none' else None

            def step(i):
                with torch.no_grad(), torch.autocast(device_type=device, dtype=dtype,
                                                     enabled=dtype is not None):
                    return model.test_step(batches[i % len(batches)])

            if job.get('cuda_graph'):
                if device != 'cuda' or dtype is not None:
                    raise BenchmarkError('--cuda-graph needs CUDA and fp32')
                capture_inference(model, batches[0], CudaGraphRunner())
                result.update(cuda_graph=True)

            times = _profiled_timed(step, job, model)
            ms = 1000 * statistics.mean(times)
            result.update(ms_per_img=ms, img_per_s=1000 / ms, profiled=bool(job.get('profile')),
                          ms_median=1000 * statistics.median(times))
            # what the post-processing had to do (untimed, one more pass over the images):
            # with random weights it depends on the draw, not on the method
            fusion = getattr(model, 'panoptic_fusion_head', None)
            result.update(post_processing_load(
                [step(i)[0] for i in range(min(len(batches), job['warmup'] + job['iters']))],
                void=getattr(fusion, 'num_classes', None)))
        else:
            model.train()
            optim_cfg = _optim_wrapper_cfg(cfg, amp, device)
            if job.get('gpu_code_paths') and not optim_cfg.optimizer.get('fused'):
                optim_cfg.optimizer.setdefault('foreach', True)  # torch's default on CUDA
            optim_wrapper = build_optim_wrapper(model, optim_cfg)
            data = pseudo_collate(samples)
            losses = []

            def step(i):
                log_vars = model.train_step(data, optim_wrapper)
                loss = log_vars['loss']
                losses.append(float(loss.detach() if hasattr(loss, 'detach') else loss))

            times = _profiled_timed(step, job, model)
            if not all(math.isfinite(v) for v in losses):
                raise RuntimeError(f'non-finite training loss: {losses}')
            result.update(s_per_iter=statistics.mean(times), s_median=statistics.median(times),
                          profiled=bool(job.get('profile')),
                          img_per_s=job['batch'] / statistics.mean(times),
                          optim_wrapper=optim_cfg.get('type', 'OptimWrapper'),
                          optimizer=optim_cfg.optimizer.type, last_loss=losses[-1])
        if job.get('count_ops'):  # one more step (or image) of the phase, counted
            result.update(count_ops(lambda: step(0)))
        if device == 'cuda':
            result.update(peak_mem_mb=torch.cuda.max_memory_allocated() / 2**20,
                          mem_kind='cuda max_memory_allocated')
        else:
            result.update(peak_mem_mb=_peak_rss_mb(), rss_before_model_mb=rss_base,
                          mem_kind='peak RSS of the process')
    return result


def _run_one(job):
    """``run_worker(job)``, with a failure returned as ``dict(phase, error)`` (traceback on
    stderr and, shortened, in ``log_tail``)."""
    try:
        return run_worker(job)
    except BenchmarkError as e:
        return dict(phase=job['phase'], error=str(e))
    except Exception as e:  # reported in the table, the other rows go on
        traceback.print_exc()
        first = str(e).strip().splitlines()[0] if str(e).strip() else ''
        return dict(phase=job['phase'], error=f'{type(e).__name__}: {first}'[:300],
                    log_tail=traceback.format_exc()[-2000:])


def _emit(result):
    sys.stdout.write('\n' + RESULT_MARK + json.dumps(result) + '\n')
    sys.stdout.flush()


def worker_main(job_json):
    job = json.loads(job_json)
    result = _run_one(job)
    result.pop('log_tail', None)  # the parent reads the worker's stderr
    _emit(result)


def worker_jobs_main(jobs_json):
    """Several jobs in one process, one after the other (``run_jobs``): the start-up (imports,
    CUDA context) is paid once. Each model is freed before the next is built, and on CUDA the
    peak-memory counter is reset after each build, so each job's CUDA peak is its own. The CPU
    peak RSS cannot be reset: after the first job it is reported as None. On CUDA the process
    stops after a failed job (a failed kernel may leave the context unusable); ``run_jobs``
    goes on in a fresh process."""
    import gc

    import torch
    jobs = json.loads(jobs_json)
    for index, job in enumerate(jobs):
        result = _run_one(job)
        if job['device'] == 'cpu' and index > 0 and 'peak_mem_mb' in result:
            result.update(peak_mem_mb=None,
                          mem_kind='n/a: CPU peak RSS of a process shared with earlier jobs')
        _emit(dict(result, index=index))
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if 'error' in result and job['device'] == 'cuda':
            return


def run_jobs(jobs, timeout=None, progress=None):
    """Run ``jobs`` (the dicts of ``run_worker``) in order in as few worker processes as
    possible: one process runs them one after the other (``worker_jobs_main``); when it fails
    a job on CUDA, crashes or exits early, the rest go on in a fresh process. ``timeout``
    (seconds) bounds the whole call: the job running at the deadline is killed and reported as
    timed out, the ones after it as skipped. ``progress(job, result)`` is called after each
    job. Returns one result per job, in order (``dict(phase, error)`` for a job that failed,
    crashed its process, timed out or was skipped)."""
    import tempfile
    import threading

    results = [None] * len(jobs)
    deadline = None if timeout is None else time.monotonic() + timeout
    start = 0
    while start < len(jobs):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            break
        batch = jobs[start:]
        cmd = [sys.executable, osp.abspath(__file__), '--worker-jobs', json.dumps(batch)]
        with tempfile.TemporaryFile('w+') as err:
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err,
                                    text=True)
            killed = threading.Event()

            def kill():
                killed.set()
                proc.kill()

            timer = threading.Timer(left, kill) if left is not None else None
            if timer:
                timer.start()
            try:
                for line in proc.stdout:
                    if line.startswith(RESULT_MARK):
                        result = json.loads(line[len(RESULT_MARK):])
                        i = start + result.pop('index')
                        results[i] = result
                        if progress:
                            progress(jobs[i], result)
                proc.wait()
            finally:
                if timer:
                    timer.cancel()
            err.seek(0)
            stderr = err.read()
        done = [i for i in range(start, len(jobs)) if results[i] is not None]
        nxt = max(done) + 1 if done else start
        if nxt < len(jobs):
            if killed.is_set():
                results[nxt] = dict(phase=jobs[nxt]['phase'], error=f'timed out: the time '
                                    f'budget ({timeout:.0f} s) ran out during this job')
                if progress:
                    progress(jobs[nxt], results[nxt])
                break
            stopped = nxt > start and 'error' in results[nxt - 1] and \
                jobs[nxt - 1]['device'] == 'cuda'  # worker_jobs_main stops after a failure
            if not stopped:  # the process died (or exited) during job nxt
                tail = stderr.strip().splitlines()[-1:] or ['']
                results[nxt] = dict(phase=jobs[nxt]['phase'],
                                    error=f'worker exited with code {proc.returncode}: '
                                    f'{tail[0][:300]}', log_tail=stderr[-2000:])
                if progress:
                    progress(jobs[nxt], results[nxt])
                nxt += 1
        start = nxt
    for i, job in enumerate(jobs):
        if results[i] is None:
            results[i] = dict(phase=job['phase'], error='skipped: the time budget ran out',
                              skipped=True)
    return results


# ---------------------------------------------------------------------------------------------
# Parent: one subprocess per (model, phase), then the table
# ---------------------------------------------------------------------------------------------

def run_job(job):
    cmd = [sys.executable, osp.abspath(__file__), '--worker', json.dumps(job)]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
            if 'error' in result and proc.stderr.strip():
                result['log_tail'] = proc.stderr.strip()[-2000:]
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ['']
    return dict(phase=job['phase'], error=f'worker exited with code {proc.returncode}: '
                f'{tail[0][:300]}', log_tail=(proc.stderr or '')[-2000:])


def _fmt(value, digits):
    return f'{value:.{digits}f}' if isinstance(value, (int, float)) else 'n/a'


def format_table(results):
    meta = results['meta']
    ops = any('ops' in (row.get('train') or {}) for row in results['rows'])
    lines = [f"device: {meta['device_name']} | amp: {meta['amp']} | inference: batch 1, "
             f"{meta['infer_size'][0]}x{meta['infer_size'][1]} | training: batch "
             f"{meta['batch']}, {meta['train_size']}x{meta['train_size']} | warmup "
             f"{meta['warmup']}, iters {meta['iters']} | memory: {meta['mem_kind']}"
             + (f" | MSDeformAttn: {meta['msda']}" if 'msda' in meta else '')
             + (f" | host malloc: {meta['host_malloc']}" if meta.get('host_malloc') else '')
             + (' | GPU code paths' if meta.get('gpu_code_paths') else ''), '',
             '| model | params (M) | infer ms/img | infer img/s | infer peak mem (MB) '
             '| train s/iter | train peak mem (MB) |'
             + (' train ops/step (non-view, data-dependent) |' if ops else ''),
             '|---|---:|---:|---:|---:|---:|---:|' + ('---:|' if ops else '')]
    errors = []
    for row in results['rows']:
        inf, tr = row.get('infer') or {}, row.get('train') or {}
        cells = [row['label'], _fmt(row.get('params_m'), 2)]
        for res, keys in ((inf, (('ms_per_img', 1), ('img_per_s', 2), ('peak_mem_mb', 0))),
                          (tr, (('s_per_iter', 3), ('peak_mem_mb', 0)))):
            if 'error' in res:
                errors.append(f"{row['label']} {res['phase']}: {res['error']}")
            cells += [_fmt(res.get(k), d) for k, d in keys]
        if ops:
            cells.append(f"{tr['ops']} ({tr['ops'] - tr['view_ops']}, "
                         f"{tr['data_dependent_ops']})" if 'ops' in tr else 'n/a')
        lines.append('| ' + ' | '.join(cells) + ' |')
    if errors:
        lines += [''] + [f'n/a: {e}' for e in errors]
    return '\n'.join(lines)


def git_version():
    """The repository's commit, with '+dirty' when tracked files differ from it."""
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=30).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ('+dirty' if dirty else '')) or None


def main(argv=None):
    args = parse_args(argv)
    # speed and memory need no pretrained weights: never download them (README, offline switch;
    # the workers inherit it)
    os.environ.setdefault('CLUSTSEG_OFFLINE_WEIGHTS', 'none')
    if args.worker is not None:
        return worker_main(args.worker)
    if args.worker_jobs is not None:
        return worker_jobs_main(args.worker_jobs)
    import torch
    try:  # fail early, before any run, on a bad config or option
        for spec in args.specs:
            make_task(load_config(spec, args.global_options))
    except BenchmarkError as e:
        sys.exit(f'error: {e}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('error: --device cuda but CUDA is not available')
    common = dict(device=args.device, infer_size=list(args.infer_size),
                  train_size=args.train_size, batch=args.batch, warmup=args.warmup,
                  iters=args.iters, amp=args.amp, seed=args.seed, threads=args.threads,
                  host_malloc=args.host_malloc if args.device == 'cpu' else None,
                  global_options=args.global_options, profile=args.profile,
                  count_ops=args.count_ops, gpu_code_paths=args.gpu_code_paths,
                  msda=resolve_msda(args.msda, args.device),
                  cuda_graph=args.cuda_graph)
    rows = []
    for spec in args.specs:
        row = dict(label=spec['label'], config=spec['config'], options=spec['options'])
        for phase in args.phases:
            print(f'[benchmark] {spec["label"]}: {phase} ...', file=sys.stderr, flush=True)
            res = run_job(dict(common, spec=spec, phase=phase))
            row['params_m'] = row.get('params_m') or res.get('params_m')
            row[phase] = res
        rows.append(row)
    device_name = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)'
    results = dict(meta=dict(
        device=args.device, device_name=device_name, torch=torch.__version__,
        amp=args.amp, msda=common['msda'], mmcv_cuda_ops=common['msda'] == 'kernel',
        host_malloc=common['host_malloc'], gpu_code_paths=args.gpu_code_paths,
        infer_size=list(args.infer_size), train_size=args.train_size,
        batch=args.batch, warmup=args.warmup, iters=args.iters, seed=args.seed,
        cfg_options=args.cfg_options, threads=args.threads or torch.get_num_threads(),
        load_average=list(os.getloadavg()) if hasattr(os, 'getloadavg') else None,
        date=time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), code=git_version(),
        mem_kind='torch.cuda.max_memory_allocated' if args.device == 'cuda' else
        'peak RSS of the worker process'), rows=rows)
    print(format_table(results))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == '__main__':
    main()
