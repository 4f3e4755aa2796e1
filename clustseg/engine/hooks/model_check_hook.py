"""Checks that a model fits what it is given: the dataset's classes (before a run starts) and
the checkpoint it loads (``load_from``, ``--resume``, ``tools/test.py CHECKPOINT``).

mmengine's Runner loads checkpoints with ``strict=False``: missing and unexpected keys are
only logged and tensors of another shape are skipped with a warning, so a superpixel
checkpoint evaluated with a panoptic config exits 0 with PQ 0. :class:`ModelCheckHook` turns
both mismatches into errors naming the keys; ``allow_partial_load=True`` (``--partial-load``
of tools/train.py and tools/test.py) keeps mmengine's partial load.
"""
import re
from typing import Dict, List, Optional, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from clustseg.models.utils import upgrade_legacy_keys
from clustseg.utils.cfg_options import config_value
from clustseg.utils.pretrained import describe_key_mismatch, state_dict_mismatch, \
    strip_state_dict

#: Config keys holding class counts, and which count of the dataset each must equal:
#: ``'things'`` (``len(metainfo['thing_classes'])``, else ``len(metainfo['classes'])``: an
#: instance dataset), ``'stuff'`` (``len(metainfo['stuff_classes'])``, 0 without) or
#: ``'all'`` (``len(metainfo['classes'])``). Keys a config does not have are not checked.
CLASS_COUNT_KEYS: Tuple[Tuple[str, str], ...] = (
    ('model.panoptic_head.num_things_classes', 'things'),
    ('model.panoptic_head.num_stuff_classes', 'stuff'),
    ('model.panoptic_fusion_head.num_things_classes', 'things'),
    ('model.panoptic_fusion_head.num_stuff_classes', 'stuff'),
    ('model.panoptic_head.initializer.stuff_class_offset', 'things'),
    ('model.panoptic_head.initializer.stuff_initializer.num_classes', 'stuff'),
    ('model.train_cfg.assigner.num_things_classes', 'things'),
    ('model.decode_head.num_classes', 'all'),
    ('model.decode_head.initializer.num_classes', 'all'),
)
_METAINFO_KEY = dict(things='thing_classes', stuff='stuff_classes', all='classes')


class ModelCheckError(ValueError):
    """A model that does not fit its dataset or checkpoint; the message names the keys."""


def dataset_class_counts(metainfo: dict) -> Optional[Dict[str, int]]:
    """``{'things', 'stuff', 'all'}`` class counts of a dataset's metainfo, or None when it
    has no classes (superpixels)."""
    classes = metainfo.get('classes')
    if not classes:
        return None
    things = metainfo.get('thing_classes')
    stuff = metainfo.get('stuff_classes') or ()
    return dict(things=len(things if things is not None else classes), stuff=len(stuff),
                all=len(classes))


def class_count_problems(cfg, metainfo: dict) -> List[str]:
    """``'<config key> = <value>, but ...'`` for each key of :data:`CLASS_COUNT_KEYS` in
    ``cfg`` that disagrees with the classes of ``metainfo``."""
    counts = dataset_class_counts(metainfo)
    if counts is None:
        return []
    problems = []
    for key, kind in CLASS_COUNT_KEYS:
        value = config_value(cfg, key)
        if value is None or value == counts[kind]:
            continue
        source = _METAINFO_KEY[kind] if (kind != 'things' or 'thing_classes' in metainfo) \
            else 'classes'
        problems.append(f'{key} = {value}, but the dataset has {counts[kind]} '
                        f"(metainfo['{source}'])")
    return problems


def check_class_counts(cfg, datasets: Dict[str, object]) -> None:
    """Raise :class:`ModelCheckError` naming every config key of :data:`CLASS_COUNT_KEYS`
    whose class count disagrees with a dataset of ``datasets`` (``{'test_dataloader':
    dataset, ...}``)."""
    for where, dataset in datasets.items():
        problems = class_count_problems(cfg, getattr(dataset, 'metainfo', {}) or {})
        if problems:
            raise ModelCheckError(
                f'the model config does not fit the classes of the {where} dataset '
                f'({type(dataset).__name__}): ' + '; '.join(problems) +
                '. Set these config keys to the dataset\'s class counts (or the dataset\'s '
                'metainfo classes to the model\'s)')


def _hidden_keys(head, model, prefix: str) -> List[Tuple[str, object, object]]:
    """``(dotted key, head value, model value)`` of the leaves of ``head`` that ``model``
    replaces when merged over it (nested dicts merge key by key, as mmengine's
    ``ConfigDict.update`` does)."""
    hidden = []
    for key, value in head.items():
        if key not in model:
            continue
        other = model[key]
        if hasattr(value, 'items') and hasattr(other, 'items'):
            hidden += _hidden_keys(value, other, f'{prefix}.{key}')
        elif other != value:
            hidden.append((f'{prefix}.{key}', value, other))
    return hidden


def check_head_cfg_overrides(cfg) -> None:
    """Raise :class:`ModelCheckError` for a setting of ``model.panoptic_head.train_cfg`` /
    ``test_cfg`` or ``model.panoptic_fusion_head.test_cfg`` that mmdet's ``MaskFormer``
    replaces: it merges ``model.train_cfg`` / ``test_cfg`` over the heads' dicts (a key the
    model's dict sets to another value wins; a model dict that is None or absent drops the
    head's whole dict), so the head's value would be ignored without a word. The message
    names the keys and where to set them."""
    if config_value(cfg, 'model.panoptic_head') is None:  # not a MaskFormer-style model
        return
    problems = []
    for head_name, parts in (('panoptic_head', ('train_cfg', 'test_cfg')),
                             ('panoptic_fusion_head', ('test_cfg', ))):
        for part in parts:
            head = config_value(cfg, f'model.{head_name}.{part}')
            if not head or not hasattr(head, 'items'):
                continue
            model = config_value(cfg, f'model.{part}')
            if not hasattr(model, 'items'):
                problems.append(f'model.{head_name}.{part} is dropped: model.{part} is None or '
                                'not set')
                continue
            problems += [f'model.{head_name}.{key}={value!r} is replaced by '
                         f'model.{part}{key[len(part):]}={other!r}'
                         for key, value, other in _hidden_keys(head, model, part)]
    if problems:
        raise ModelCheckError(
            '; '.join(problems) + ". mmdet's MaskFormer hands model.train_cfg / "
            'model.test_cfg to its heads over their own: set these keys there instead')


def check_slide_test_cfg(cfg) -> None:
    """Raise :class:`ModelCheckError` when ``model.test_cfg.mode`` is ``'slide'`` without
    ``crop_size`` and ``stride``: mmseg's slide inference reads both before any ClustSeg code
    runs, and fails on a missing one with an ``AttributeError`` that names no config key."""
    test_cfg = config_value(cfg, 'model.test_cfg')
    if not hasattr(test_cfg, 'get') or test_cfg.get('mode') != 'slide':
        return
    missing = [k for k in ('crop_size', 'stride') if test_cfg.get(k) is None]
    if missing:
        raise ModelCheckError(
            "model.test_cfg.mode='slide' needs " +
            ' and '.join(f'model.test_cfg.{k}' for k in missing) +
            " (the window size and step, e.g. crop_size=(640, 640), stride=(426, 426)); or "
            "use mode='whole'")


def check_fusion_head(cfg) -> None:
    """Raise :class:`ModelCheckError` when a ClustSeg head (``model.panoptic_head``) is given
    a fusion head that does not read its class scores: the heads return each class's
    probability with no no-object column, which mmdet's ``MaskFormerFusionHead`` would read
    as a distribution whose last class is no-object (wrong classes and scores, no error)."""
    from mmdet.registry import MODELS as DET_MODELS

    from clustseg.models.fusion_heads import ClassScoreFusionHead
    from clustseg.models.heads import ClustSegHead
    head = config_value(cfg, 'model.panoptic_head.type')
    fusion = config_value(cfg, 'model.panoptic_fusion_head.type')
    head_cls = head if isinstance(head, type) else DET_MODELS.get(head) if head else None
    fusion_cls = fusion if isinstance(fusion, type) else \
        DET_MODELS.get(fusion) if fusion else None
    if head_cls is None or not issubclass(head_cls, ClustSegHead):
        return
    if fusion_cls is None or not issubclass(fusion_cls, ClassScoreFusionHead):
        raise ModelCheckError(
            f'model.panoptic_fusion_head.type={fusion!r}: {head_cls.__name__} returns each '
            "class's probability (no no-object column), which only ClassScoreFusionHead reads; "
            "set model.panoptic_fusion_head.type='ClassScoreFusionHead'")


def check_model_config(cfg) -> None:
    """The model-config checks that need no data: :func:`check_head_cfg_overrides`,
    :func:`check_fusion_head` and :func:`check_slide_test_cfg` (``init_model``, and
    ``ModelCheckHook.before_run``)."""
    check_head_cfg_overrides(cfg)
    check_fusion_head(cfg)
    check_slide_test_cfg(cfg)


def checkpoint_problem(model, checkpoint: dict) -> Optional[str]:
    """What does not fit when ``checkpoint`` (a Runner checkpoint or a state dict, keys
    revised as the Runner does: a leading ``module.`` dropped) is loaded into ``model``."""
    if is_model_wrapper(model):
        model = model.module
    state = {re.sub(r'^module\.', '', k): v for k, v in strip_state_dict(checkpoint).items()}
    state = upgrade_legacy_keys(model, state)  # keys of older checkpoints, renamed on load
    missing, unexpected, mismatched = state_dict_mismatch(model.state_dict(), state)
    if not (missing or unexpected or mismatched):
        return None
    return describe_key_mismatch(missing, unexpected, mismatched)


@HOOKS.register_module()
class ModelCheckHook(Hook):
    """Errors for a model that does not fit its data or its checkpoint.

    - ``before_run`` (after the Runner built the dataloaders of the run, before any
      checkpoint is loaded or any step runs): the class counts of the config
      (:data:`CLASS_COUNT_KEYS`) against each built dataset's ``metainfo``, and the checks of
      :func:`check_model_config` (no head setting hidden by the model's, a complete slide
      ``test_cfg``);
    - ``after_load_checkpoint`` (``load_from``, resume, tools/test.py): every model key must
      be in the checkpoint with the model's shape, and every checkpoint key in the model,
      unless ``allow_partial_load``.

    tools/train.py and tools/test.py register it (:func:`register_model_checks`).

    Args:
        allow_partial_load (bool): keep mmengine's partial load (missing, unexpected and
            other-shape keys are only logged). Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial_load: bool = False) -> None:
        self.allow_partial_load = bool(allow_partial_load)

    def before_run(self, runner) -> None:
        datasets = {}
        for name in ('train', 'val', 'test'):
            loop = getattr(runner, f'_{name}_loop', None)
            dataloader = getattr(loop, 'dataloader', None)
            if dataloader is not None and hasattr(dataloader, 'dataset'):
                datasets[f'{name}_dataloader'] = dataloader.dataset
        check_model_config(runner.cfg)
        check_class_counts(runner.cfg, datasets)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        problem = checkpoint_problem(runner.model, checkpoint)
        if problem is None:
            return
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        if self.allow_partial_load:
            print_log(f'partial load (allow_partial_load): {source}: {problem}',
                      logger='current', level=30)
            return
        raise ModelCheckError(
            f'checkpoint {source} does not fit the model {type(runner.model).__name__}: '
            f'{problem}. Is it a checkpoint of this config? To load the matching part anyway, '
            'pass --partial-load (tools/train.py, tools/test.py) or set '
            'ModelCheckHook(allow_partial_load=True)')


def register_model_checks(runner, allow_partial_load: bool = False) -> ModelCheckHook:
    """Register a :class:`ModelCheckHook` on ``runner`` (or set ``allow_partial_load`` on
    the one the config already has) and return it."""
    for hook in runner.hooks:
        if isinstance(hook, ModelCheckHook):
            hook.allow_partial_load = hook.allow_partial_load or allow_partial_load
            return hook
    hook = ModelCheckHook(allow_partial_load=allow_partial_load)
    runner.register_hook(hook)
    return hook
