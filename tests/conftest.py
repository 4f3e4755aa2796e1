"""Shared pytest setup: small thread count, all modules registered, repo root fixture, the
offline switch for pretrained weights (nothing in a test downloads)."""
import importlib.util
import logging
import os
from pathlib import Path

import pytest
import torch
from mmengine.logging import MMLogger

import clustseg  # noqa: F401  (applies the checkpoint fixes)
from clustseg.utils import register_all_modules
from clustseg.utils.pretrained import OFFLINE_ENV

# no test downloads: pretrained initialisation is skipped unless a test points the switch at
# a folder of upstream-layout files (the `upstream_weights` fixture)
os.environ[OFFLINE_ENV] = 'none'

torch.set_num_threads(2)
register_all_modules(init_default_scope=True, scope='mmseg')

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """Absolute path of the repository root."""
    return REPO_ROOT


@pytest.fixture(scope='session')
def upstream_weights(tmp_path_factory):
    """(folder, written) with randomly initialised checkpoints in the layouts of the files the
    paper configs name (torchvision ResNet-50/101, official Swin-B, mmpretrain ConvNeXt-B),
    under the names ``CLUSTSEG_OFFLINE_WEIGHTS=<folder>`` reads; ``written`` maps 'r50',
    'r101', 'swin-b', 'convnext-b' to what each file holds."""
    from pretrained_files import write_upstream_checkpoints
    folder = tmp_path_factory.mktemp('upstream_weights')
    return folder, write_upstream_checkpoints(folder)


@pytest.fixture(scope='session')
def heldout_data(tmp_path_factory, load_script):
    """A folder holding ``data/camvid`` and ``data/coco128`` as the converters write them from
    the committed real samples (tests/data/camvid, tests/data/coco128_seg; all 3 coco128
    images in train): the held-out benchmark configs read it with their data roots under it."""
    root = tmp_path_factory.mktemp('heldout_data')
    load_script('tools/dataset_converters/camvid.py').convert(
        str(REPO_ROOT / 'tests/data/camvid'), str(root / 'data/camvid'), verbose=False)
    load_script('tools/dataset_converters/coco128_seg.py').convert(
        str(REPO_ROOT / 'tests/data/coco128_seg'), str(root / 'data/coco128'), num_train=3,
        verbose=False)
    return root


@pytest.fixture(scope='session')
def heldout_scoring_data(tmp_path_factory, heldout_data, load_script):
    """As ``heldout_data``, with the committed coco128 images in the test split: they are
    among the benchmark's last 50 (held out), so the shipped coco128 checkpoints never trained
    on them."""
    root = tmp_path_factory.mktemp('heldout_scoring_data')
    (root / 'data').mkdir()
    (root / 'data/camvid').symlink_to(heldout_data / 'data/camvid')
    load_script('tools/dataset_converters/coco128_seg.py').convert(
        str(REPO_ROOT / 'tests/data/coco128_seg'), str(root / 'data/coco128'), num_train=0,
        verbose=False)
    return root


@pytest.fixture(scope='session')
def load_script():
    """Imports a repository script by path: ``load_script('tools/x/y.py')`` -> module ``y``
    (``name`` overrides the module name)."""
    def load(relpath, name=None):
        path = REPO_ROOT / relpath
        spec = importlib.util.spec_from_file_location(name or path.stem, str(path))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


class _Records(logging.Handler):
    """Collects the messages of the current mmengine logger."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture()
def log_messages():
    """The messages logged by mmengine's current logger during the test."""
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def pytest_addoption(parser):
    parser.addoption('--runslow', action='store_true', default=False,
                     help='also run the tests marked slow (left out of the default suite)')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long end-to-end test, run with --runslow')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--runslow'):
        return
    skip = pytest.mark.skip(reason='slow: run with --runslow')
    for item in items:
        if 'slow' in item.keywords:
            item.add_marker(skip)
