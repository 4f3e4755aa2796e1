from .superpixel_embedding_head import SuperpixelEmbeddingHead

__all__ = ["SuperpixelEmbeddingHead"]
