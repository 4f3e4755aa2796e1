from .inference import inference_superpixel, init_model

__all__ = ['init_model', 'inference_superpixel']
