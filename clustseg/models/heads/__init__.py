from .clustseg_head import ClustSegHead
from .clustseg_semantic_head import ClustSegSemanticHead
from .clustseg_panoptic_head import ClustSegPanopticHead
from .superpixel_embedding_head import SuperpixelEmbeddingHead

__all__ = ['ClustSegHead', 'ClustSegSemanticHead', 'ClustSegPanopticHead', 'SuperpixelEmbeddingHead']
