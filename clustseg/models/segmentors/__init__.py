from .superpixel_segmentor import SuperpixelSegmentor, TooManySuperpixelsError

__all__ = ['SuperpixelSegmentor', 'TooManySuperpixelsError']
