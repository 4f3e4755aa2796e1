from .class_score_fusion_head import ClassScoreFusionHead

__all__ = ['ClassScoreFusionHead']
