"""Local (9-candidate) E/M inside the decoder's recurrent cross-attention (superpixels, issue
9): agreement with the dense form where it must agree, gradients, padding, and the decoder /
segmentor plumbing (``ClusterDecoder(local_levels=...)``)."""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmseg.registry import MODELS

from clustseg.models.decoders import ClusterDecoder
from clustseg.models.layers.seed_grid import grid_points
from clustseg.models.layers.local_em import LocalAssignment, LocalGrid
from clustseg.models.layers.recurrent_cross_attention import RecurrentCrossAttention


def _separated(h, w, k, sharp, heads=2, variant='recurrent', seed=0):
    """Two heads, each reading (x, y) * sharp / S plus noise channels, identity K/V: with a large
    ``sharp`` a pixel's dense softmax mass outside its 9 candidate centers is negligible."""
    g = torch.Generator().manual_seed(seed)
    grid = LocalGrid(k, (h, w), (h, w))  # the seed map is this level (stride 8 of superpixels)
    pts = grid_points(k, h, w)  # K x 2 (x, y) pixel coordinates
    s = math.sqrt(h * w / k)
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing='ij')
    mid = torch.tensor([w / 2, h / 2])
    xy = (torch.stack([xs, ys], -1).view(-1, 2) - mid) / s * sharp  # N x 2
    per_head = [torch.cat([xy, 0.1 * torch.randn(h * w, 1, generator=g)], 1)
                for _ in range(heads)]
    feats = torch.cat(per_head, 1)[None]  # 1 x N x 3h
    cxy = (pts - mid) / s * sharp
    centers = torch.cat([torch.cat([cxy, torch.zeros(k, 1)], 1) for _ in range(heads)], 1)[None]
    centers = centers + 0.2 * torch.randn(centers.shape, generator=g)
    rca = RecurrentCrossAttention(3 * heads, num_heads=heads, num_iters=3, identity_kv=True,
                                  center_norm_bias=True, scale=1.0, variant=variant)
    with torch.no_grad():
        rca.q_proj.weight.copy_(torch.eye(3 * heads) + 0.01 * torch.randn(3 * heads, 3 * heads,
                                                                          generator=g))
        rca.q_proj.bias.zero_()
    return grid, feats, centers, rca


@pytest.mark.parametrize('variant', ['recurrent', 'kmeans'])
@pytest.mark.parametrize('padded', [False, True])
def test_local_equals_dense_multi_head_when_far_centers_carry_no_mass(variant, padded):
    h, w, k = 24, 30, 20  # 4 x 5 cells of 6 x 6 pixels
    grid, feats, centers, rca = _separated(h, w, k, sharp=6.0, variant=variant)
    kpm = None
    if padded:  # every cell keeps valid pixels
        valid = torch.ones(1, h, w, dtype=torch.bool)
        valid[:, 22:] = False
        valid[:, :, 28:] = False
        kpm = ~valid.flatten(1)
    dense = rca(centers, feats, key_padding_mask=kpm)
    loc = rca(centers, feats, key_padding_mask=kpm, grid=grid)
    assert loc['grid'] is grid and loc['probs'][0].shape == (1, k, 9, grid.slots)
    cand = grid.to_dense(torch.ones(1, k, 9, grid.slots)) > 0
    for p in dense['probs']:  # the premise: no dense mass outside the 9 candidates
        assert float(p.detach().masked_fill(cand, 0).max()) < 1e-6
    for t in range(3):
        torch.testing.assert_close(grid.to_dense(loc['probs'][t]), dense['probs'][t],
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(grid.to_dense(loc['assigns'][t]), dense['assigns'][t],
                                   rtol=0, atol=1e-5)
        torch.testing.assert_close(loc['iter_centers'][t], dense['iter_centers'][t],
                                   rtol=0, atol=1e-4)


def test_local_differs_from_dense_when_far_centers_matter():
    """The test above is not vacuous: with a flat embedding the two forms disagree."""
    grid, feats, centers, rca = _separated(24, 30, 20, sharp=0.3)
    dense = rca(centers, feats)
    loc = rca(centers, feats, grid=grid)
    assert (grid.to_dense(loc['probs'][0]) - dense['probs'][0]).abs().max() > 1e-2


def test_local_m_step_is_the_masses_of_the_candidates():
    """One round by hand: c_j = sum_i M_ij v_i / sum_i M_ij over the pixels having j among
    their candidates, per head; with learned (non-identity) projections."""
    torch.manual_seed(0)
    h, w, k, d, heads = 10, 12, 6, 8, 2
    grid = LocalGrid(k, (h, w), (h, w))
    rca = RecurrentCrossAttention(d, num_heads=heads, num_iters=1)
    centers, feats = torch.randn(1, k, d), torch.randn(1, h * w, d)
    out = rca(centers, feats, grid=grid)
    q = rca._split(rca.q_proj(centers))[0]  # h x K x dh
    key = rca._split(rca.k_proj(feats))[0]  # h x N x dh
    val = rca._split(rca.v_proj(feats))[0]
    cand = grid.to_dense(torch.ones(1, k, 9, grid.slots))[0] > 0  # K x N
    logits = torch.einsum('hkd,hnd->hkn', q, key) * rca.scale
    m = logits.masked_fill(~cand, float('-inf')).softmax(1)  # h x K x N
    c = torch.einsum('hkn,hnd->hkd', m, val)
    c = c / (m.sum(-1, keepdim=True) + rca.eps)
    want = c.transpose(0, 1).reshape(k, d)
    torch.testing.assert_close(out['centers'][0], want, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grid.to_dense(out['probs'][0])[0], m.mean(0), rtol=0,
                               atol=1e-6)


@pytest.mark.parametrize('variant', ['recurrent', 'kmeans'])
def test_local_gradients_reach_q_k_v(variant):
    """'recurrent' through the M-step and the probs; 'kmeans' (hard M-step) through the probs a
    loss supervises, as in the dense form."""
    torch.manual_seed(0)
    grid = LocalGrid(6, (10, 12), (10, 12))
    rca = RecurrentCrossAttention(8, num_heads=2, num_iters=2, variant=variant)
    out = rca(torch.randn(1, 6, 8), torch.randn(1, 120, 8), grid=grid)
    target = torch.rand_like(out['probs'][-1])
    (out['centers'].pow(2).sum() + (out['probs'][-1] * target).sum()).backward()
    for name in ('q_proj', 'k_proj', 'v_proj'):
        g = getattr(rca, name).weight.grad
        assert g is not None and g.abs().sum() > 0, name


def test_local_padding_is_ignored():
    torch.manual_seed(0)
    grid = LocalGrid(6, (10, 12), (10, 12))
    rca = RecurrentCrossAttention(8, num_heads=2, num_iters=3)
    centers, feats = torch.randn(1, 6, 8), torch.randn(1, 120, 8)
    kpm = torch.zeros(1, 10, 12, dtype=torch.bool)
    kpm[:, 8:] = True
    kpm = kpm.flatten(1)
    a = rca(centers, feats, key_padding_mask=kpm, grid=grid)
    feats2 = feats.clone()
    feats2[kpm] = 100.0  # garbage on the padding
    b = rca(centers, feats2, key_padding_mask=kpm, grid=grid)
    torch.testing.assert_close(a['centers'], b['centers'])
    assert float(grid.to_dense(a['probs'][-1].detach())[0][:, kpm[0]].abs().max()) == 0.0


def test_local_rejects_vanilla_and_mismatched_grids():
    grid = LocalGrid(6, (10, 12), (10, 12))
    with pytest.raises(ValueError, match='variant=SoftmaxOverPixels'):
        RecurrentCrossAttention(8, num_heads=2, variant='vanilla')(
            torch.randn(1, 6, 8), torch.randn(1, 120, 8), grid=grid)
    with pytest.raises(ValueError, match='5 centers for a grid of 6 cells'):
        RecurrentCrossAttention(8, num_heads=2)(torch.randn(1, 5, 8), torch.randn(1, 120, 8),
                                                grid=grid)


def _pyramid(b=1):
    return [torch.randn(b, 16, 3, 4), torch.randn(b, 16, 5, 7), torch.randn(b, 16, 10, 13)]


def test_decoder_local_level_maps_and_gradients():
    torch.manual_seed(0)
    dec = ClusterDecoder(in_channels=[16, 16, 16], embed_dims=16, num_heads=2, ffn_dims=32,
                         layer_levels=(0, 1, 2), local_levels=(2,))
    k = 30
    out = dec(torch.randn(2, k, 16), _pyramid(2), return_logits=True, seed_hw=(10, 13))
    for es in out['e_steps']:
        if es['level'] == 2:
            assert isinstance(es['probs'], LocalAssignment)
            dense = es['probs'].to_dense()
            assert dense.shape == (2, k, 130)
            torch.testing.assert_close(dense.sum(1), torch.ones(2, 130))
            assert es['logits'].shape == (2, k, 9, es['probs'].grid.slots)
        else:
            assert es['probs'].shape == (2, k, es['hw'][0] * es['hw'][1])
    out['centers'].sum().backward()
    missing = [n for n, p in dec.named_parameters() if p.grad is None]
    assert not missing, missing


def test_decoder_local_levels_errors():
    with pytest.raises(ValueError, match=r'local_levels entry 3 is not a level of layer_levels'):
        ClusterDecoder(in_channels=[16, 16, 16], embed_dims=16, num_heads=2,
                       layer_levels=(0, 1, 2), local_levels=(3,))
    with pytest.raises(ValueError, match='vanilla'):
        ClusterDecoder(in_channels=[16, 16, 16], embed_dims=16, num_heads=2,
                       layer_levels=(0, 1, 2), local_levels=(2,), variant='vanilla')
    dec = ClusterDecoder(in_channels=[16, 16, 16], embed_dims=16, num_heads=2, ffn_dims=32,
                         layer_levels=(0, 1, 2), local_levels=(2,))
    with pytest.raises(ValueError, match='forward needs seed_hw'):
        dec(torch.randn(1, 30, 16), _pyramid())
    with pytest.raises(ValueError, match=r'needs K <= 130, got K=131'):
        dec(torch.randn(1, 131, 16), _pyramid(), seed_hw=(10, 13))


def test_superpixel_model_with_a_local_decoder_trains_and_predicts(repo_root):
    """The stride-8 decoder layer's E-steps are local and supervised on their local form; every
    parameter gets a gradient (DDP, find_unused_parameters=False)."""
    cfg = Config.fromfile(str(repo_root / 'configs/_base_/models/clustseg_superpixel_compact.py'))
    cfg.model.decoder['local_levels'] = (2,)
    torch.manual_seed(0)
    m = MODELS.build(cfg.model)
    m.train()
    m.train_cfg.update(num_superpixels_range=(24, 24), decoder_loss_weight=0.1)
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    samples, imgs = [], []
    for hw in ((64, 80), (48, 64)):
        imgs.append(torch.randint(0, 255, (3,) + hw, dtype=torch.uint8))
        ds = SegDataSample(metainfo=dict(img_shape=hw, ori_shape=hw))
        lbl = np.repeat(np.arange(4), hw[1] // 4)[None].repeat(hw[0], 0)
        ds.gt_sem_seg = PixelData(data=torch.as_tensor(lbl)[None].long())
        samples.append(ds)
    data = m.data_preprocessor(dict(inputs=imgs, data_samples=samples), True)
    out = m.cluster(data['inputs'], 24, m.padding(data['inputs'], data['data_samples']),
                    dense_final=False)
    kinds = {es['level']: isinstance(es['probs'], LocalAssignment) for es in out['e_steps']}
    assert kinds == {0: False, 1: False, 2: True}
    losses = m(**data, mode='loss')
    assert any(k.startswith('d2.') for k in losses)
    sum(losses.values()).backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    m.eval()
    sp = m.superpixels(data['inputs'][:1], 24)[0]
    assert sp.shape == (64, 80)


def test_assignment_maps_of_a_local_decoder_level(repo_root):
    """The assignment-map API densifies the local stride-8 E-steps: one map per E-step, labels
    at the image size, center ids < K."""
    from clustseg.apis import init_model
    from clustseg.apis.inference import inference_assignments
    from clustseg.utils import register_all_modules
    torch.manual_seed(0)
    try:
        model = init_model(str(repo_root / 'configs/superpixel/clustseg_compact_embedded.py'),
                           cfg_options={'model.decoder.local_levels': [2]})
        img = np.random.default_rng(0).integers(0, 255, (48, 72, 3), dtype=np.uint8)
        maps = inference_assignments(model, img, num_superpixels=20)
    finally:
        register_all_modules(init_default_scope=True, scope='mmseg')
    layers = len(model.core.decoder.layers)
    assert len(maps) == (layers + 1) * 3
    for m in maps:
        assert m['labels'].shape == (48, 72) and 0 <= m['labels'].min()
        assert m['labels'].max() < 20 and m['num_clusters'] == 20
    assert {m['hw'] for m in maps if m['layer'] == 2} == {(6, 9)}
