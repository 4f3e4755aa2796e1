import pytest
import torch

from clustseg.models.decoders import ClusterDecoder
from clustseg.models.pixel_decoders import AxialPixelDecoder


def _backbone_feats(b, h, w, chans=(8, 16, 32, 64)):
    return [torch.randn(b, c, -(-h // s), -(-w // s)) for c, s in zip(chans, (4, 8, 16, 32))]


@pytest.mark.parametrize('hw', [(321, 481), (97, 131), (64, 64)])
def test_axial_pixel_decoder_any_size(hw):
    h, w = hw
    dec = AxialPixelDecoder(in_channels=[8, 16, 32, 64], channels=[32, 16, 16, 8], num_heads=4)
    feats = _backbone_feats(1, h, w)
    outs = dec(feats)
    assert [o.shape[1] for o in outs] == [32, 16, 16, 8]
    for o, f in zip(outs, feats[::-1]):
        assert o.shape[-2:] == f.shape[-2:]
    n_axial = sum(1 for m in dec.modules() if type(m).__name__ == 'AxialBlock')
    assert n_axial == 6


def test_cluster_decoder_predictions_after_every_e_step():
    dec = ClusterDecoder(in_channels=[32, 16, 16], embed_dims=32, num_heads=4, num_iters=3,
                         ffn_dims=64, num_classes=5, mask_dims=8)
    feats = [torch.randn(2, c, s, s) for c, s in zip([32, 16, 16], [4, 8, 16])]
    out = dec(torch.randn(2, 10, 32), feats, mask_feats=torch.randn(2, 8, 32, 32))
    assert len(out['predictions']) == 6 * 3  # every E-step of every layer
    assert len(out['e_steps']) == 18
    last = out['predictions'][-1]
    assert last['cls_logits'].shape == (2, 10, 6)
    assert last['mask_logits'].shape == (2, 10, 32, 32)
    assert [e['level'] for e in out['e_steps'][::3]] == [0, 0, 1, 1, 2, 2]
    assert out['e_steps'][0]['assigns'].shape == (2, 10, 16)  # stride-32 level: 4 x 4


@pytest.mark.parametrize('mode,count', [('layer', 6), ('final', 1)])
def test_cluster_decoder_supervision_modes(mode, count):
    dec = ClusterDecoder(in_channels=[8, 8, 8], embed_dims=8, num_heads=2, ffn_dims=16,
                         mask_dims=4, deep_supervision=mode)
    feats = [torch.randn(1, 8, s, s) for s in (2, 4, 8)]
    out = dec(torch.randn(1, 3, 8), feats, mask_feats=torch.randn(1, 4, 8, 8))
    assert len(out['predictions']) == count


def test_cluster_decoder_parameters_do_not_grow_with_iterations():
    n = [sum(p.numel() for p in ClusterDecoder(in_channels=[8, 8, 8], embed_dims=8,
                                               num_heads=2, num_iters=t).parameters())
         for t in (1, 3, 6)]
    assert n[0] == n[1] == n[2]


def test_cluster_decoder_bad_config():
    with pytest.raises(ValueError, match='deep_supervision'):
        ClusterDecoder(deep_supervision='some')
    with pytest.raises(ValueError, match='layer_levels'):
        ClusterDecoder(in_channels=[8, 8], layer_levels=(0, 2))
