"""``skip_bad``: find unreadable samples once at start-up, warn about them, drop and count them.

Any mmengine dataset gets the switch by listing :class:`SkipBadSamplesMixin` before its base
class (``class CocoX(SkipBadSamplesMixin, CocoDataset)``). With ``skip_bad=True`` the dataset
runs the loading transforms of its pipeline (those up to and including the last ``Load*``
one) on every sample, warns for each failing one with its file and reason, drops it and lists
it in ``metainfo['skipped']`` (``[(path, reason), ...]``), which the metrics report. Off by
default: a bad sample is then an error naming its file, in training and evaluation alike.
"""
import copy
import logging
import random
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .image_io import BadInputError
from .samplers import SampleSeedingMixin

#: What a loading transform raises for a bad file (config mistakes such as ``KeyError`` or
#: ``TypeError`` are not in here: they still stop the run).
BAD_INPUT_ERRORS = (BadInputError, OSError, ValueError, AssertionError, cv2.error)


def loading_transforms(transforms: Sequence) -> list:
    """The transforms of a pipeline up to and including its last ``Load*`` transform."""
    names = [type(t).__name__ for t in transforms]
    last = max((i for i, name in enumerate(names) if name.startswith('Load')), default=-1)
    return list(transforms[:last + 1])


def sample_problem(info: dict, transforms: Sequence) -> Optional[Tuple[str, str]]:
    """``(path, reason)`` if running ``transforms`` on a copy of ``info`` fails, else None.

    ``path`` is the file the error names (:class:`BadInputError`), else ``info['img_path']``.
    """
    results = copy.deepcopy(info)  # transforms may change nested lists (seg_fields)
    try:
        for t in transforms:
            results = t(results)
            if results is None:
                return str(info.get('img_path')), f'{type(t).__name__} returned None'
    except BAD_INPUT_ERRORS as err:
        if isinstance(err, BadInputError):
            return err.path, err.reason
        return str(info.get('img_path')), f'{type(err).__name__}: {err}'
    return None


def split_bad_samples(data_list: Sequence[dict], transforms: Sequence
                      ) -> Tuple[List[dict], List[Tuple[str, str]]]:
    """``(good samples, [(path, reason) of each bad one])``, checked with ``transforms``.

    The global numpy and Python RNG states are restored afterwards, so the check does not
    change what random transforms draw later.
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    good, bad = [], []
    try:
        for info in data_list:
            problem = sample_problem(info, transforms)
            if problem is None:
                good.append(info)
            else:
                bad.append(problem)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return good, bad


def warn_skipped(owner: str, path: str, reason: str) -> None:
    """Log the one-line warning for a skipped sample."""
    print_log(f'{owner}: skipping bad input {path}: {reason}', logger='current',
              level=logging.WARNING)


class SkipBadSamplesMixin(SampleSeedingMixin):
    """Adds ``skip_bad`` (default False) to an mmengine ``BaseDataset`` subclass.

    List it first among the bases. ``load_data_list`` may report a sample it cannot even list
    (e.g. a missing annotation) with :meth:`bad_input`, which raises without ``skip_bad``.
    After ``filter_data``, every remaining sample is checked with the pipeline's loading
    transforms (see the module docstring).

    Each sample is prepared after seeding its transforms from its index
    (:class:`~clustseg.datasets.samplers.SampleSeedingMixin`: the resumable sampler's
    per-sample seeds).

    Args:
        skip_bad (bool): warn about, drop and count bad samples instead of failing on them.
    """

    def __init__(self, *args, skip_bad: bool = False, **kwargs) -> None:
        if not isinstance(skip_bad, bool):
            raise TypeError(f'{type(self).__name__}: skip_bad must be a bool, got {skip_bad!r}')
        self.skip_bad = skip_bad
        self._listing_bad: List[Tuple[str, str]] = []
        super().__init__(*args, **kwargs)

    def bad_input(self, err: BadInputError) -> None:
        """Raise ``err``; with ``skip_bad``, record it instead (the caller drops the sample)."""
        if not self.skip_bad:
            raise err
        self._listing_bad.append((err.path, err.reason))

    def no_samples_reason(self) -> str:
        """Where the samples were looked for, for the error of a dataset that lists none: the
        ``ann_file``, or the image folder (``data_root`` + ``data_prefix.img_path``) and
        ``img_suffix``."""
        ann_file = getattr(self, 'ann_file', '')
        if ann_file:
            return f'ann_file {ann_file} lists none'
        prefix = getattr(self, 'data_prefix', None) or {}
        folder = prefix.get('img_path', getattr(self, 'data_root', ''))
        suffix = getattr(self, 'img_suffix', None)
        files = f'*{suffix} images' if suffix else 'images'
        return (f'no {files} in {folder} (data_root + data_prefix.img_path'
                + (f', img_suffix={suffix!r}' if suffix else '') + ')')

    def filter_data(self) -> List[dict]:
        listed = len(self.data_list)
        data_list = super().filter_data()
        name = type(self).__name__
        if not data_list and listed:
            where = f' of {self.ann_file}' if getattr(self, 'ann_file', '') else ''
            raise ValueError(f'{name}: filter_cfg={dict(self.filter_cfg or {})} drops all '
                             f'{listed} samples{where}: change filter_cfg in the config '
                             '(e.g. filter_empty_gt=False, a smaller min_size)')
        if not data_list and not self._listing_bad:  # mmengine's would be a numpy error
            raise FileNotFoundError(f'{name}: no samples: {self.no_samples_reason()}')
        if not self.skip_bad:
            return data_list
        transforms = loading_transforms(self.pipeline.transforms)
        if not transforms:
            raise ValueError(f'{name}: skip_bad=True needs a Load* transform in the pipeline '
                             'to check the samples with')
        good, bad = split_bad_samples(data_list, transforms)
        skipped = self._listing_bad + bad
        for path, reason in skipped:
            warn_skipped(name, path, reason)
        if skipped:
            print_log(f'{name}: skipped {len(skipped)} bad sample(s), {len(good)} left',
                      logger='current', level=logging.WARNING)
        self._metainfo['skipped'] = [tuple(s) for s in skipped]
        if skipped and not good:
            raise ValueError(f'{name}: all {len(skipped)} samples are bad (skip_bad=True); '
                             f'the first: {skipped[0][0]}: {skipped[0][1]}')
        return good
