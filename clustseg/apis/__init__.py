from .inference import (detector_dataset_meta, inference_assignments, inference_detector,
                        inference_superpixel, init_model)
from .inference import inference_segmentor, segmentor_dataset_meta

__all__ = ['init_model', 'inference_superpixel', 'inference_detector', 'inference_assignments',
           'detector_dataset_meta', 'inference_segmentor', 'segmentor_dataset_meta']
