"""MergedGroupsOptimWrapperConstructor: mmengine's parameter-wise settings, merged groups."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.optim import build_optim_wrapper

from clustseg.engine import MergedGroupsOptimWrapperConstructor  # noqa: F401 (registers)
from clustseg.engine.optimizers import merge_param_groups


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 1))
        self.head = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.Linear(8, 4))
        self.level_embed = nn.Embedding(3, 8)

    def forward(self, x):
        f = self.backbone(x).mean(dim=(2, 3)) + self.level_embed.weight.sum(0)
        return self.head(f)


def _cfg(constructor=None, fused=None):
    optimizer = dict(type='AdamW', lr=1e-3, weight_decay=0.05)
    if fused is not None:
        optimizer['fused'] = fused
    cfg = dict(type='OptimWrapper',
               optimizer=optimizer,
               paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1, decay_mult=1.0),
                                               'level_embed': dict(lr_mult=1.0,
                                                                   decay_mult=0.0)},
                                  norm_decay_mult=0.0),
               clip_grad=dict(max_norm=0.5))
    if constructor:
        cfg['constructor'] = constructor
    return cfg


def _settings(optimizer):
    """param -> (lr, weight_decay) as the optimizer will apply them."""
    return {id(p): (g['lr'], g['weight_decay']) for g in optimizer.param_groups
            for p in g['params']}


@pytest.mark.parametrize('fused', [None, True])
def test_same_settings_and_update_in_fewer_groups(fused):
    """Merged groups, and PyTorch's fused AdamW in them (the schedules' setting), update every
    parameter as mmengine's default constructor with PyTorch's default AdamW does."""
    torch.manual_seed(0)
    net = _Net()
    net2 = copy.deepcopy(net)
    default = build_optim_wrapper(net, _cfg())
    merged = build_optim_wrapper(net2, _cfg('MergedGroupsOptimWrapperConstructor', fused))
    assert merged.optimizer.defaults['fused'] is fused
    n_params = len(list(net.parameters()))
    assert len(default.optimizer.param_groups) == n_params
    # one group per distinct option set: the backbone key (norms too: a custom key wins),
    # the head's defaults, the head's norm (no decay) and the level-embedding key (the same
    # lr and decay as the norm, but the key's lr_mult / decay_mult options differ)
    assert len(merged.optimizer.param_groups) == 4
    by_name = dict(net.named_parameters())
    by_name2 = dict(net2.named_parameters())
    s1, s2 = _settings(default.optimizer), _settings(merged.optimizer)
    assert {n: s1[id(p)] for n, p in by_name.items()} == \
        {n: s2[id(p)] for n, p in by_name2.items()}
    x = torch.randn(4, 3, 12, 12)
    for _ in range(3):
        for model, wrapper in ((net, default), (net2, merged)):
            wrapper.update_params(model(x).square().mean())
    for n, p in by_name.items():
        torch.testing.assert_close(by_name2[n], p, rtol=1e-6, atol=1e-7, msg=n)


def test_merge_keeps_first_appearance_order_and_rejects_unhashable_options():
    a, b, c = (nn.Parameter(torch.zeros(1)) for _ in range(3))
    groups = merge_param_groups([dict(params=[a], lr=1.0), dict(params=[b], lr=2.0),
                                 dict(params=[c], lr=1.0)])
    assert [g['lr'] for g in groups] == [1.0, 2.0]
    assert groups[0]['params'] == [a, c]
    with pytest.raises(TypeError, match='paramwise_cfg'):
        merge_param_groups([dict(params=[a], betas=[0.9, 0.99])])
