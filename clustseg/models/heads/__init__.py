from .clustseg_head import ClustSegHead
from .superpixel_embedding_head import SuperpixelEmbeddingHead

__all__ = ['ClustSegHead', 'SuperpixelEmbeddingHead']
