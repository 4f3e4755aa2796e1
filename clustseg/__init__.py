"""ClustSeg: Clustering for Universal Segmentation (ICML 2023) on OpenMMLab."""
__version__ = '0.1.0'

from .utils.setup_env import setup_env  # noqa: E402

setup_env()

from . import apis, datasets, engine, evaluation, models, visualization  # noqa: E402,F401

__all__ = ['__version__', 'setup_env', 'superpixels']


def __getattr__(name):
    """``clustseg.superpixels`` (:func:`clustseg.apis.superpixel_api.superpixels`), imported
    on first use."""
    if name == 'superpixels':
        from .apis.superpixel_api import superpixels
        return superpixels
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
