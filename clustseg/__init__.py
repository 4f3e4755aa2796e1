"""ClustSeg: Clustering for Universal Segmentation (ICML 2023) on OpenMMLab."""
__version__ = '0.1.0'

from .utils.setup_env import setup_env  # noqa: E402

setup_env()

from . import apis, datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__all__ = ['__version__', 'setup_env']
