from .inference import (detector_dataset_meta, inference_assignments, inference_detector,
                        inference_superpixel, init_model, load_model_checkpoint)
from .inference import inference_segmentor, segmentor_dataset_meta

__all__ = ['init_model', 'load_model_checkpoint', 'inference_superpixel', 'inference_detector', 'inference_assignments',
           'detector_dataset_meta', 'inference_segmentor', 'segmentor_dataset_meta',
           'superpixels', 'load_superpixel_model', 'export_superpixel_onnx']

_LAZY = {'superpixels': 'superpixel_api', 'load_superpixel_model': 'superpixel_api',
         'export_superpixel_onnx': 'superpixel_onnx'}


def __getattr__(name):
    """The one-call superpixel API and the ONNX export, imported on first use."""
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
