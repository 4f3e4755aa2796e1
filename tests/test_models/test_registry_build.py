"""Every ClustSeg module builds from a config dict through the OpenMMLab registries."""
import pytest
import torch
from mmdet.registry import MODELS as DET_MODELS
from mmseg.registry import MODELS as SEG_MODELS

import clustseg  # noqa: F401  (registers everything)

CFGS = [
    dict(type='RecurrentCrossAttention', embed_dims=16, num_heads=2, num_iters=3),
    dict(type='ClusterDecoderLayer', embed_dims=16, num_heads=2, ffn_dims=32),
    dict(type='ClusterDecoder', in_channels=[8, 8, 8], embed_dims=16, num_heads=2),
    dict(type='AxialPixelDecoder', in_channels=[8, 8, 8, 8], channels=[8, 8, 8, 8],
         num_heads=2),
    dict(type='GridInitializer', in_channels=8, embed_dims=16, pos_dims=8),
    dict(type='ImageAdaptiveInitializer', in_channels=8, embed_dims=16, num_queries=4),
    dict(type='LearnedInitializer', num_queries=4, embed_dims=16),
    dict(type='MemoryBankInitializer', num_classes=3, feat_dims=8, embed_dims=16),
    dict(type='PanopticInitializer',
         thing_initializer=dict(type='LearnedInitializer', num_queries=2, embed_dims=16),
         stuff_initializer=dict(type='MemoryBankInitializer', num_classes=3, feat_dims=8,
                                embed_dims=16)),
    dict(type='SuperpixelEmbeddingHead', in_channels=8, embed_dims=8, stem_dims=8),
    dict(type='SLICLoss'),
    dict(type='SuperpixelReconstructionLoss'),
]


@pytest.mark.parametrize('cfg', CFGS, ids=[c['type'] for c in CFGS])
@pytest.mark.parametrize('registry', [DET_MODELS, SEG_MODELS], ids=['mmdet', 'mmseg'])
def test_build_from_registry(cfg, registry):
    module = registry.build(dict(cfg))
    assert isinstance(module, torch.nn.Module)
    assert type(module).__name__ == cfg['type']
