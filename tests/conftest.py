"""Shared pytest setup: small thread count, all modules registered, repo root fixture."""
from pathlib import Path

import pytest
import torch

import clustseg  # noqa: F401  (applies the checkpoint fixes)
from clustseg.utils import register_all_modules

torch.set_num_threads(2)
register_all_modules(init_default_scope=True, scope='mmseg')

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def repo_root() -> Path:
    """Absolute path of the repository root."""
    return REPO_ROOT
