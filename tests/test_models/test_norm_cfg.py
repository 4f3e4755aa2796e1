"""``norm_cfg`` reaches every normalisation layer of the paper configs: switched to SyncBN
(for 2 images per GPU) no plain BatchNorm is left, and mmengine's single-process fallback
(``revert_sync_batchnorm``) runs the model on the CPU. (torch's SyncBatchNorm itself needs a
GPU: its multi-process statistics cannot be exercised in CPU CI.)"""
import pytest
import torch
from mmengine.config import Config
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from clustseg.registry import MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CONFIGS = {
    'panoptic': ('configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py', 'mmdet'),
    'instance': ('configs/instance/clustseg_r50_8xb2-lsj-50e_coco.py', 'mmdet'),
    'semantic': ('configs/semantic/clustseg_r50_8xb2-100e_ade20k-640x640.py', 'mmseg'),
    'superpixel': ('configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py',
                   'mmseg'),
}


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


@pytest.mark.parametrize('task', sorted(CONFIGS))
def test_sync_bn_reaches_every_norm_layer(task):
    path, scope = CONFIGS[task]
    cfg = Config.fromfile(str(ROOT / path))
    assert _to_sync_bn(cfg.model) >= 2  # at least the backbone and the pixel decoder
    with DefaultScope.overwrite_default_scope(scope):
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
