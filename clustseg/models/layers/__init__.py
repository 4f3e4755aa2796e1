from .axial_block import AxialAttention1d, AxialBlock, ConvBlock
from .batch_padding import BatchPadding
from .positional_encoding import sine_encode_points, sine_position_encoding
from .recurrent_cross_attention import RecurrentCrossAttention

__all__ = ['AxialAttention1d', 'AxialBlock', 'BatchPadding', 'ConvBlock', 'sine_encode_points',
           'sine_position_encoding', 'RecurrentCrossAttention']
