from .inference import (detector_dataset_meta, inference_assignments, inference_detector,
                        inference_superpixel, init_model)

__all__ = ['init_model', 'inference_superpixel', 'inference_detector', 'inference_assignments',
           'detector_dataset_meta']
