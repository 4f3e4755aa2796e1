from .clustseg_head import ClustSegHead
from .clustseg_semantic_head import ClustSegSemanticHead
from .clustseg_panoptic_head import ClustSegPanopticHead
from .clustseg_instance_head import ClustSegInstanceHead
from .superpixel_embedding_head import SuperpixelEmbeddingHead

__all__ = ['ClustSegHead', 'ClustSegSemanticHead', 'ClustSegPanopticHead', 'ClustSegInstanceHead',
           'SuperpixelEmbeddingHead']
