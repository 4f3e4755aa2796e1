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


@pytest.mark.parametrize('task,change,match', [
    ('panoptic', dict(panoptic_head=dict(initializer=dict(thing_initializer=dict(
        type='ImageAdaptiveInitialiser')))),
     r"model\.panoptic_head\.initializer=.*thing_initializer=.*'ImageAdaptiveInitialiser'.* "
     r"is not a registered query initializer; registered: \[.*'LearnedInitializer'"),
    ('panoptic', dict(panoptic_head=dict(decoder=dict(num_iter=2))),
     r"model\.panoptic_head\.decoder: .*unexpected keyword argument 'num_iter'"),
    ('semantic', dict(decode_head=dict(initializer=dict(_delete_=True, type='LearnedInitialiser',
                                                         num_queries=150, embed_dims=64))),
     r"model\.decode_head\.initializer=.* is not a registered query initializer"),
    ('superpixel', dict(pixel_decoder=dict(num_block=(1, 2))),
     r"model\.pixel_decoder: .*unexpected keyword argument 'num_block'"),
])
def test_a_core_part_that_cannot_be_built_names_its_config_key(task, change, match, repo_root):
    """A misspelled initializer type or decoder argument names the config key at fault (and,
    for an initializer, the registered ones), not only mmengine's class name."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from clustseg.registry import MODELS
    name = ('clustseg_compact_embedded_ade20k.py' if task == 'semantic' else
            'clustseg_compact_embedded.py')
    cfg = Config.fromfile(str(repo_root / 'configs' / task / name))
    cfg.merge_from_dict(dict(model=change))
    with DefaultScope.overwrite_default_scope(cfg.default_scope), \
            pytest.raises(ValueError, match=match):
        MODELS.build(cfg.model)
