from .axial_pixel_decoder import AxialPixelDecoder

__all__ = ["AxialPixelDecoder"]
