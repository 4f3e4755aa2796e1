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


def test_cluster_decoder_returns_a_state_after_every_e_step():
    dec = ClusterDecoder(in_channels=[32, 16, 16], embed_dims=32, num_heads=4, num_iters=3,
                         ffn_dims=64)
    feats = [torch.randn(2, c, s, s) for c, s in zip([32, 16, 16], [4, 8, 16])]
    out = dec(torch.randn(2, 10, 32), feats, return_logits=True)
    assert len(out['e_steps']) == 6 * 3  # every E-step of every layer
    assert [(e['layer'], e['iter']) for e in out['e_steps'][:4]] == [(0, 0), (0, 1), (0, 2),
                                                                        (1, 0)]
    assert [e['level'] for e in out['e_steps'][::3]] == [0, 0, 1, 1, 2, 2]
    first = out['e_steps'][0]
    assert first['centers'].shape == (2, 10, 32)
    assert first['hw'] == (4, 4)
    for key in ('logits', 'probs', 'assigns'):
        assert first[key].shape == (2, 10, 16)  # stride-32 level: 4 x 4
    assert torch.equal(out['e_steps'][-1]['centers'], out['centers'])
    # without return_logits: centers only (no B x K x N maps kept)
    lean = dec(torch.randn(2, 10, 32), feats)
    assert len(lean['e_steps']) == 18 and 'logits' not in lean['e_steps'][0]


def test_each_level_adds_its_own_level_embedding():
    """The keys of level l carry level_embed row l: changing a row changes exactly the E-steps
    from the first layer reading that level on (Mask2Former's level embedding)."""
    torch.manual_seed(0)
    dec = ClusterDecoder(in_channels=[32, 16, 16], embed_dims=32, num_heads=4, num_iters=1,
                         ffn_dims=64).eval()
    feats = [torch.randn(1, c, s, s) for c, s in zip([32, 16, 16], [4, 8, 16])]
    centers = torch.randn(1, 10, 32)
    with torch.no_grad():
        before = dec(centers, feats, return_logits=True)['e_steps']
        original = dec.level_embed.weight.clone()
        levels = [e['level'] for e in before]
        assert levels == [0, 0, 1, 1, 2, 2]
        for row in (0, 1, 2):
            dec.level_embed.weight[row] += 1.0
            after = dec(centers, feats, return_logits=True)['e_steps']
            dec.level_embed.weight.copy_(original)
            changed = [not torch.equal(a['logits'], b['logits']) for a, b in zip(before, after)]
            assert changed == [lv >= row for lv in levels], row


def test_inner_rounds_off_computes_only_each_layers_last_round():
    """``inner_rounds=False`` (inference, supervision of the last E-steps only): the states of
    the rounds before each layer's last have no centers, every other output is unchanged."""
    dec = ClusterDecoder(in_channels=[32, 16, 16], embed_dims=32, num_heads=4, num_iters=3,
                         ffn_dims=64).eval()
    feats = [torch.randn(2, c, s, s) for c, s in zip([32, 16, 16], [4, 8, 16])]
    centers = torch.randn(2, 10, 32)
    full = dec(centers, feats, return_logits=True)
    lean = dec(centers, feats, return_logits=True, inner_rounds=False)
    assert torch.equal(full['centers'], lean['centers'])
    assert len(lean['e_steps']) == len(full['e_steps']) == 18
    for a, b in zip(full['e_steps'], lean['e_steps']):
        assert (a['layer'], a['iter'], a['level'], a['hw']) == \
            (b['layer'], b['iter'], b['level'], b['hw'])
        for key in ('logits', 'probs', 'assigns'):
            assert torch.equal(a[key], b[key])
        if b['iter'] < 2:
            assert b['centers'] is None
        else:
            assert torch.equal(a['centers'], b['centers'])


@pytest.mark.parametrize('variant', ['recurrent', 'vanilla', 'kmeans'])
def test_cluster_decoder_every_parameter_gets_a_gradient(variant):
    """A loss on the final centers and on each E-step's probabilities reaches every parameter
    (mmengine's DDP runs with find_unused_parameters=False), the k-means Q/K included."""
    dec = ClusterDecoder(in_channels=[8, 8, 8], embed_dims=8, num_heads=2, ffn_dims=16,
                         variant=variant)
    feats = [torch.randn(2, 8, s, s) for s in (2, 4, 8)]
    out = dec(torch.randn(2, 3, 8), feats, return_logits=True)
    loss = out['centers'].pow(2).mean() + sum(e['probs'].pow(2).mean() for e in out['e_steps'])
    loss.backward()
    missing = [n for n, p in dec.named_parameters() if p.grad is None]
    assert not missing


def test_cluster_decoder_rejects_unread_levels():
    with pytest.raises(ValueError, match=r'level\(s\) \[2\]'):
        ClusterDecoder(in_channels=[8, 8, 8], embed_dims=8, num_heads=2, layer_levels=(0, 1))


def test_cluster_decoder_parameters_do_not_grow_with_iterations():
    n = [sum(p.numel() for p in ClusterDecoder(in_channels=[8, 8, 8], embed_dims=8,
                                               num_heads=2, num_iters=t).parameters())
         for t in (1, 3, 6)]
    assert n[0] == n[1] == n[2]


def test_cluster_decoder_bad_config():
    with pytest.raises(ValueError, match='layer_levels'):
        ClusterDecoder(in_channels=[8, 8], layer_levels=(0, 2))


def test_cluster_decoder_reads_only_levels_with_channels():
    """in_channels None marks a pyramid level no layer reads: no projection, no level
    embedding row, every parameter still trains (DDP, find_unused_parameters=False)."""
    dec = ClusterDecoder(in_channels=[None, None, 8], embed_dims=8, num_heads=1, ffn_dims=16,
                         layer_levels=(2, ))
    assert dec.level_embed.num_embeddings == 1
    feats = [torch.randn(2, c, s, s) for c, s in ((64, 2), (32, 4), (8, 8))]
    out = dec(torch.randn(2, 3, 8), feats, return_logits=True)
    assert len(out['e_steps']) == 3 and all(e['level'] == 2 for e in out['e_steps'])
    loss = out['centers'].pow(2).mean() + sum(e['probs'].pow(2).mean() for e in out['e_steps'])
    loss.backward()
    assert not [n for n, p in dec.named_parameters() if p.grad is None]
    with pytest.raises(ValueError, match='reads pyramid level 1, whose in_channels entry is None'):
        ClusterDecoder(in_channels=[None, None, 8], embed_dims=8, num_heads=1,
                       layer_levels=(1, 2))
    # a level with channels that no layer reads is still an error
    with pytest.raises(ValueError, match=r'level\(s\) \[1\]'):
        ClusterDecoder(in_channels=[None, 8, 8], embed_dims=8, num_heads=1, layer_levels=(2, ))


def test_cross_attention_keeps_no_map_when_asked():
    """return_logits=False keeps the last iteration's maps; with return_maps=False none (the
    decoder's inference path, which reads only the centers); the centers are the same."""
    from clustseg.models.layers.recurrent_cross_attention import RecurrentCrossAttention
    torch.manual_seed(0)
    ca = RecurrentCrossAttention(8, num_heads=2, num_iters=3)
    c, x = torch.randn(1, 4, 8), torch.randn(1, 30, 8)
    last = ca(c, x, return_logits=False)
    none = ca(c, x, return_logits=False, return_maps=False)
    assert len(last['logits']) == 1 and none['logits'] == none['probs'] == none['assigns'] == []
    torch.testing.assert_close(last['centers'], none['centers'])


def test_maps_asked_by_name_are_the_only_ones_kept():
    """return_maps=('probs',) keeps the softmax over the clusters alone (what the panoptic
    losses read), equal to the one of return_maps=True; an unknown name is an error naming
    the allowed ones; the decoder's states carry only the maps asked for, at local levels too
    (wrapped as LocalAssignment)."""
    from clustseg.models.layers.local_em import LocalAssignment
    from clustseg.models.layers.recurrent_cross_attention import RecurrentCrossAttention
    torch.manual_seed(0)
    ca = RecurrentCrossAttention(8, num_heads=2, num_iters=3, variant='kmeans')
    c, x = torch.randn(2, 4, 8), torch.randn(2, 30, 8)
    full = ca(c, x)
    probs = ca(c, x, return_maps=('probs', ))
    assert probs['logits'] == [None] * 3 and probs['assigns'] == [None] * 3
    for a, b in zip(full['probs'], probs['probs']):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=r"unknown maps \['prob'\]; choose from"):
        ca(c, x, return_maps=('prob', ))
    dec = ClusterDecoder(in_channels=[8, 8], embed_dims=8, num_heads=2, num_iters=2,
                         layer_levels=(0, 1), local_levels=(1, ))
    feats = [torch.randn(2, 8, 6, 6), torch.randn(2, 8, 12, 12)]
    out = dec(torch.randn(2, 9, 8), feats, return_logits=('probs', ), seed_hw=(6, 6))
    assert all(set(e) == {'layer', 'iter', 'level', 'hw', 'centers', 'probs'}
               for e in out['e_steps'])
    assert isinstance(out['e_steps'][-1]['probs'], LocalAssignment)
    ref = dec(torch.randn(2, 9, 8), feats, return_logits=True, seed_hw=(6, 6))
    assert {'logits', 'assigns', 'probs'} <= set(ref['e_steps'][0])


def test_named_maps_local_form_and_edge_cases():
    """Local form: ('assigns',) returns no probs even where probs is the assignment
    (recurrent); the decoder's kept probs equal those of return_logits=True for the same
    inputs; a single name may be given as a string; a pixel-decoder stage without axial
    blocks still runs."""
    from clustseg.models.pixel_decoders.axial_pixel_decoder import AxialPixelDecoder
    torch.manual_seed(0)
    dec = ClusterDecoder(in_channels=[8, 8], embed_dims=8, num_heads=2, num_iters=2,
                         layer_levels=(0, 1), local_levels=(1, ))
    feats = [torch.randn(2, 8, 6, 6), torch.randn(2, 8, 12, 12)]
    c = torch.randn(2, 9, 8)
    only = dec(c, feats, return_logits='assigns', seed_hw=(6, 6))['e_steps']
    assert all(set(e) == {'layer', 'iter', 'level', 'hw', 'centers', 'assigns'} for e in only)
    ca = dec.layers[1].cross_attn
    grid = dec._grid(9, (6, 6), 1, (12, 12), c.device)
    x = torch.randn(2, 144, 8)
    out = ca(c, x, grid=grid, return_maps=('assigns', ))
    assert out['probs'] == [None, None] and all(a is not None for a in out['assigns'])
    probs = dec(c, feats, return_logits=('probs', ), seed_hw=(6, 6))['e_steps']
    ref = dec(c, feats, return_logits=True, seed_hw=(6, 6))['e_steps']
    for p, r in zip(probs, ref):
        pp, rp = p['probs'], r['probs']
        torch.testing.assert_close(getattr(pp, 'probs', pp), getattr(rp, 'probs', rp))
    pix = AxialPixelDecoder(in_channels=(8, 8, 8, 8), channels=(8, 8, 8, 8), num_heads=2,
                            num_blocks=(0, 1))
    outs = pix([torch.randn(1, 8, 16, 16), torch.randn(1, 8, 8, 8), torch.randn(1, 8, 4, 4),
                torch.randn(1, 8, 2, 2)])
    assert [o.shape[-1] for o in outs] == [2, 4, 8, 16]
