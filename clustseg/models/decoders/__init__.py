from .cluster_decoder import ClusterDecoder
from .cluster_decoder_layer import ClusterDecoderLayer

__all__ = ["ClusterDecoder", "ClusterDecoderLayer"]
