"""Norms of the paper configs. Panoptic, instance and semantic follow the Mask2Former recipe:
the pretrained backbone's BN is frozen (no gradient, eval-mode statistics even in training)
and the pixel decoder uses GroupNorm, so no layer depends on the 2 images per GPU. The
superpixel config (8 images per GPU) trains BN; its ``norm_cfg`` reaches every normalisation
layer, so that switching it to SyncBN leaves no plain BatchNorm, and mmengine's single-process
fallback (``revert_sync_batchnorm``) runs the model on the CPU. (torch's SyncBatchNorm itself
needs a GPU: its multi-process statistics cannot be exercised in CPU CI; the 2-process DDP test
of the frozen-BN + GN choice is tests/test_tools/test_ddp.py.)"""
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from clustseg.registry import MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
MASK_CONFIGS = {
    'panoptic': ('configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py', 'mmdet',
                 'panoptic_head'),
    'instance': ('configs/instance/clustseg_r50_8xb2-lsj-50e_coco.py', 'mmdet', 'panoptic_head'),
    'semantic': ('configs/semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py', 'mmseg',
                 'decode_head'),
}
SUPERPIXEL = 'configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py'


@pytest.mark.parametrize('task', sorted(MASK_CONFIGS))
def test_frozen_backbone_bn_and_group_norm_decoder(task):
    path, scope, head = MASK_CONFIGS[task]
    cfg = Config.fromfile(str(ROOT / path))
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model).train()
    bns = [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    assert bns and all(n.startswith('backbone.') for n, _ in bns)
    for n, m in bns:  # frozen: eval mode in training, no trainable affine
        assert not m.training, n
        assert not any(p.requires_grad for p in m.parameters()), n
    decoder = getattr(model, head).core.pixel_decoder
    gns = [m for m in decoder.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert gns and all(m.num_groups == 32 for m in gns)
    assert not any(isinstance(m, _BatchNorm) for m in getattr(model, head).modules())


def _to_sync_bn(node):
    """Every ``norm_cfg=dict(type='BN', ...)`` in a config tree -> SyncBN; returns the count."""
    n = 0
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'norm_cfg' and isinstance(v, dict) and v.get('type') == 'BN':
                v['type'] = 'SyncBN'
                n += 1
            else:
                n += _to_sync_bn(v)
    elif isinstance(node, (list, tuple)):
        n += sum(_to_sync_bn(v) for v in node)
    return n


def test_superpixel_sync_bn_reaches_every_norm_layer():
    cfg = Config.fromfile(str(ROOT / SUPERPIXEL))
    assert _to_sync_bn(cfg.model) >= 2  # at least the backbone and the pixel decoder
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    norms = [(n, m) for n, m in model.named_modules() if isinstance(m, _BatchNorm)]
    plain = [n for n, m in norms if not isinstance(m, torch.nn.SyncBatchNorm)]
    assert norms and not plain, plain
    # single process: mmengine's Runner reverts SyncBN to BN; the model then runs on CPU
    model = revert_sync_batchnorm(model).eval()
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    with torch.no_grad():
        feats = model.backbone(torch.randn(1, 3, 64, 64))
    assert all(torch.isfinite(f).all() for f in feats)
