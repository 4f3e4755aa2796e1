"""Local (9-candidate) full-resolution E/M: layout, agreement with the dense form where they
must agree, gradients, padding, and memory that does not grow with K."""
import math

import pytest
import torch

from clustseg.models.layers.seed_grid import grid_points, grid_row_counts
from clustseg.models.e_steps import SoftmaxOverClusters, SoftmaxOverPixels
from clustseg.models.layers.local_em import LocalAssignment, LocalGrid, local_em, local_grid
from clustseg.models.layers.recurrent_cross_attention import RecurrentCrossAttention
from clustseg.models.losses.superpixel_losses import (pixel_coords, reconstruction_loss,
                                                      slic_loss)


def _seed_grid(k, h, w, stride=8):
    fh, fw = math.ceil(h / stride), math.ceil(w / stride)
    pts = grid_points(k, fh, fw) * torch.tensor([w / fw, h / fh])  # full-resolution (x, y)
    return LocalGrid(k, (fh, fw), (h, w)), pts


@pytest.mark.parametrize('k,h,w', [(1, 9, 13), (7, 33, 47), (12, 48, 64), (600, 321, 481),
                                   (600, 481, 321), (2400, 321, 481)])
def test_layout_one_cell_per_seed(k, h, w):
    grid, pts = _seed_grid(k, h, w)
    assert grid.num_clusters == k  # the requested K is the actual K
    assert grid.row_counts == grid_row_counts(k, math.ceil(h / 8), math.ceil(w / 8))
    # every pixel in exactly one slot, slots <-> pixels a bijection
    assert int(grid.slot_ok.sum()) == h * w
    assert torch.equal(grid.slot_pix.flatten()[grid.pix_slot], torch.arange(h * w))
    # the seed of cell k lies in cell k
    cell = grid.pix_slot // grid.slots
    seed_pix = pts[:, 1].floor().long() * w + pts[:, 0].floor().long()
    assert torch.equal(cell[seed_pix], torch.arange(k))
    # candidate 4 is the cell itself; valid candidates are distinct
    assert torch.equal(grid.cand[:, 4], torch.arange(k)) and grid.cand_ok[:, 4].all()
    for c, ok in zip(grid.cand.tolist(), grid.cand_ok.tolist()):
        valid = [x for x, o in zip(c, ok) if o]
        assert len(valid) == len(set(valid))
    # slots hold at most a small factor more than HW entries, whatever K
    assert grid.num_clusters * grid.slots <= 1.6 * h * w


def test_regular_grid_candidates_are_the_3x3_neighbourhood():
    grid, _ = _seed_grid(24, 32, 48)  # 4 rows x 6 columns of 8 x 8 px cells
    assert grid.row_counts == [6] * 4 and grid.slots == 64
    for k in range(24):
        r, c = divmod(k, 6)
        want = {rr * 6 + cc for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2)
                if 0 <= rr < 4 and 0 <= cc < 6}
        got = {x for x, o in zip(grid.cand[k].tolist(), grid.cand_ok[k].tolist()) if o}
        assert got == want, k


def _separated_problem(h, w, k, sharp, seed=0):
    """Pixel embedding = sharp * (x, y) / S plus weak noise; centers at the seeds, jittered.
    With a large ``sharp`` a pixel's dense softmax mass outside its 9 candidate centers is
    below float precision."""
    g = torch.Generator().manual_seed(seed)
    grid, pts = _seed_grid(k, h, w)
    s = math.sqrt(h * w / k)
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing='ij')
    mid = torch.tensor([w / 2, h / 2])  # centred coordinates keep fp32 logits small
    feats = torch.cat([(torch.stack([xs, ys]) - mid[:, None, None])[None] / s * sharp,
                       0.1 * torch.randn(1, 3, h, w, generator=g)], 1)  # 1 x 5 x H x W
    centers = torch.cat([(pts - mid) / s * sharp, torch.zeros(k, 3)], 1)[None]
    centers = centers + 0.2 * torch.randn(1, k, 5, generator=g)
    rca = RecurrentCrossAttention(5, num_heads=1, num_iters=3, identity_kv=True,
                                  center_norm_bias=True, scale=1.0)
    with torch.no_grad():  # near-identity Q, as the trained model's
        rca.q_proj.weight.copy_(torch.eye(5) + 0.01 * torch.randn(5, 5, generator=g))
        rca.q_proj.bias.copy_(0.01 * torch.randn(5, generator=g))
    return grid, feats, centers, rca


def _local(rca, centers, feats, grid, valid=None):
    """The local form of ``rca`` (its :func:`local_em`) on B x E x H x W features."""
    kpm = None if valid is None else ~valid.flatten(1)
    return rca(centers, feats.flatten(2).transpose(1, 2), kpm, grid=grid)


@pytest.mark.parametrize('padded', [False, True])
def test_local_equals_dense_when_far_centers_carry_no_mass(padded):
    h, w, k = 48, 60, 20  # 4 x 5 cells of 12 x 12 px: up to 16 of 20 centers are not candidates
    grid, feats, centers, rca = _separated_problem(h, w, k, sharp=5.0)
    assert grid.row_counts == [5] * 4
    valid = torch.ones(1, h, w, dtype=torch.bool)
    if padded:  # every cell keeps valid pixels (an all-padding cell's center collapses to 0,
        valid[:, 44:] = False  # which the dense form lets attract far pixels)
        valid[:, :, 56:] = False
    kpm = ~valid.flatten(1) if padded else None
    dense = rca(centers, feats.flatten(2).transpose(1, 2), key_padding_mask=kpm)
    loc = _local(rca, centers, feats, grid, valid if padded else None)
    # the dense softmax mass outside the 9 candidates is negligible here (the premise)
    cand_mask = grid.to_dense(torch.ones(1, k, 9, grid.slots)) > 0
    for p in dense['probs']:
        assert float(p.detach().masked_fill(cand_mask, 0).max()) < 1e-7
    for t in range(3):  # to fp32 rounding of the two contraction orders (centers up to ~10)
        torch.testing.assert_close(grid.to_dense(loc['probs'][t]), dense['probs'][t],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(loc['iter_centers'][t], dense['iter_centers'][t],
                                   rtol=1e-5, atol=1e-5)
    # hard labels agree too
    hard_local = grid.candidate_labels(loc['logits'][-1])
    hard_dense = dense['logits'][-1].argmax(1)
    keep = valid.flatten(1)
    assert torch.equal(hard_local[keep], hard_dense[keep])


def test_local_differs_from_dense_when_far_centers_matter():
    """The test above is not vacuous: with a flat embedding the dense form spreads mass over
    far centers and the two forms disagree."""
    grid, feats, centers, rca = _separated_problem(48, 72, 24, sharp=0.3)
    dense = rca(centers, feats.flatten(2).transpose(1, 2))
    loc = _local(rca, centers, feats, grid)
    assert (grid.to_dense(loc['probs'][0]) - dense['probs'][0]).abs().max() > 1e-2


def test_local_losses_equal_dense_losses_on_the_same_assignment():
    torch.manual_seed(0)
    h, w, k = 30, 44, 10
    grid = local_grid(k, (4, 6), (h, w))
    logits = torch.randn(2, k, 9, grid.slots).masked_fill(~grid.cand_ok[None, :, :, None],
                                                          float('-inf'))
    valid = torch.ones(2, h, w, dtype=torch.bool)
    valid[1, :, 30:] = False
    probs = logits.softmax(2) * grid.gather(valid.flatten(1))[:, :, None, :]
    la = LocalAssignment(probs.requires_grad_(True), grid)
    labels = torch.randint(0, 5, (2, h, w)) * 1000 + 7  # sparse, non-contiguous ids
    labels[0, :3] = -1
    coords = pixel_coords(h, w)
    loc, den = slic_loss(la, labels, coords, valid), slic_loss(la.to_dense(), labels, coords,
                                                               valid)
    for key in ('sem', 'pos', 'total'):
        torch.testing.assert_close(loc[key], den[key], rtol=1e-5, atol=1e-7)
    target = torch.randn(2, h * w, 3)
    torch.testing.assert_close(reconstruction_loss(la, target, valid),
                               reconstruction_loss(la.to_dense(), target, valid),
                               rtol=1e-5, atol=1e-7)
    # gradients equal as well
    g_loc = torch.autograd.grad(loc['total'] + reconstruction_loss(la, target, valid), probs)[0]
    dense = la.to_dense().detach().requires_grad_(True)
    g_den = torch.autograd.grad(slic_loss(dense, labels, coords, valid)['total']
                                + reconstruction_loss(dense, target, valid), dense)[0]
    torch.testing.assert_close(grid.to_dense(g_loc), g_den.masked_fill(grid.to_dense(
        torch.ones_like(probs)) == 0, 0.0), rtol=1e-4, atol=1e-7)


def test_gradients_flow_to_centers_features_and_q():
    h, w, k = 40, 56, 12
    grid, feats, centers, rca = _separated_problem(h, w, k, sharp=1.0)
    feats.requires_grad_(True)
    centers.requires_grad_(True)
    out = _local(rca, centers, feats, grid)
    labels = (torch.arange(w) // 9).expand(1, h, w).contiguous()
    loss = 0
    for p in out['probs']:
        la = LocalAssignment(p, grid)
        loss = loss + slic_loss(la, labels, pixel_coords(h, w))['total']
        loss = loss + reconstruction_loss(la, feats.flatten(2).transpose(1, 2)[..., 2:])
    loss.backward()
    for name, g in [('centers', centers.grad), ('feats', feats.grad),
                    ('q_proj.weight', rca.q_proj.weight.grad)]:
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_padding_is_ignored():
    """Padded pixels get no assignment and do not move any center, whatever their values."""
    h, w, k = 40, 56, 12
    grid, feats, centers, rca = _separated_problem(h, w, k, sharp=1.0)
    valid = torch.ones(1, h, w, dtype=torch.bool)
    valid[:, 31:] = False
    valid[:, :, 45:] = False
    other = feats.clone()
    other[~valid[:, None].expand_as(other)] = 1e3
    a = _local(rca, centers, feats, grid, valid)
    b = _local(rca, centers, other, grid, valid)
    for pa, pb in zip(a['probs'], b['probs']):
        assert (grid.scatter(pa.sum(2))[~valid.flatten(1)] == 0).all()
        torch.testing.assert_close(pa, pb)
    for ca, cb in zip(a['iter_centers'], b['iter_centers']):
        torch.testing.assert_close(ca, cb)


def test_memory_does_not_grow_with_k():
    """At a fixed 321 x 481 image, every tensor the local E/M and its losses keep for backward
    stays O(HW) for K = 50 .. 2400 (a dense map would grow 48x)."""
    h, w, e = 321, 481, 5
    n = h * w
    sizes = {}
    for k in (50, 600, 2400):
        grid, _ = _seed_grid(k, h, w)
        feats = torch.randn(1, e, h, w, requires_grad=True)
        centers = torch.randn(1, k, e, requires_grad=True)
        rca = RecurrentCrossAttention(e, num_heads=1, num_iters=2, identity_kv=True,
                                      center_norm_bias=True, scale=1.0)
        saved = []

        def pack(t):
            saved.append(t.numel())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = _local(rca, centers, feats, grid)
            la = LocalAssignment(out['probs'][-1], grid)
            loss = slic_loss(la, torch.randint(0, 30, (1, h, w)), pixel_coords(h, w))['total']
            loss = loss + reconstruction_loss(la, torch.randn(1, n, 3))
        loss.backward()
        assert out['probs'][-1].numel() == k * grid.slots * 9 <= 1.6 * 9 * n
        sizes[k] = max(saved)
        assert sizes[k] <= 1.6 * n * max(9, e), (k, sizes[k])
        assert sizes[k] < k * n  # far below one dense K x HW map
    assert max(sizes.values()) <= 1.5 * min(sizes.values()), sizes


def test_grid_cache_and_k_mismatch_error():
    a = local_grid(30, (5, 7), (40, 56))
    assert local_grid(30, (5, 7), (40, 56)) is a
    with pytest.raises(ValueError, match='29 centers for a grid of 30 cells'):
        x = torch.zeros(1, 40 * 56, 5)
        local_em(torch.zeros(1, 29, 5), x, x, a, lambda c: c, 1, SoftmaxOverClusters())
    with pytest.raises(ValueError, match='SoftmaxOverPixels E-step has no local form'):
        local_em(torch.zeros(1, 30, 5), x, x, a, lambda c: c, 1, SoftmaxOverPixels())
