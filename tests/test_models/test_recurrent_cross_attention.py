import numpy as np
import pytest
import torch

from clustseg.models.layers import RecurrentCrossAttention


def numpy_soft_em(c, x, iters, scale):
    """Plain soft EM: M = softmax_K(scale C X^T); C = M X / sum_i M (Eq. 3-4, mean M-step)."""
    assigns = []
    for _ in range(iters):
        logits = scale * c @ x.T  # K x N
        logits -= logits.max(0, keepdims=True)
        m = np.exp(logits)
        m /= m.sum(0, keepdims=True)
        assigns.append(m)
        c = (m @ x) / (m.sum(1, keepdims=True) + 1e-6)
    return c, assigns


def identity_rca(dims, iters, **kw):
    rca = RecurrentCrossAttention(dims, num_heads=1, num_iters=iters, identity_kv=True, **kw)
    with torch.no_grad():
        rca.q_proj.weight.copy_(torch.eye(dims))
        rca.q_proj.bias.zero_()
    return rca


@pytest.mark.parametrize('iters', [1, 3, 5])
def test_identity_projection_matches_numpy_soft_em(iters):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float64)
    c0 = x[rng.choice(50, 6, replace=False)] + 0.1 * rng.normal(size=(6, 8))
    rca = identity_rca(8, iters, scale=0.7).double()
    with torch.no_grad():
        out = rca(torch.from_numpy(c0)[None], torch.from_numpy(x)[None])
    ref_c, ref_m = numpy_soft_em(c0, x, iters, 0.7)
    assert len(out['assigns']) == iters
    for got, want in zip(out['assigns'], ref_m):
        np.testing.assert_allclose(got[0].numpy(), want, atol=1e-6)
    np.testing.assert_allclose(out['centers'][0].numpy(), ref_c, atol=1e-6)


def test_assignments_sum_to_one_over_clusters():
    rca = RecurrentCrossAttention(32, num_heads=4, num_iters=3)
    out = rca(torch.randn(2, 10, 32), torch.randn(2, 70, 32))
    for a in out['assigns']:
        assert a.shape == (2, 10, 70)
        torch.testing.assert_close(a.sum(1), torch.ones(2, 70))


def test_m_step_is_weighted_mean():
    torch.manual_seed(0)
    c, x = torch.randn(1, 4, 8), torch.randn(1, 30, 8)
    mean = identity_rca(8, 1)(c, x)
    m = mean['assigns'][0][0]  # K x N
    torch.testing.assert_close(mean['centers'][0], (m @ x[0]) / (m.sum(1, keepdim=True) + 1e-6))


def test_parameter_count_independent_of_iterations():
    n1 = sum(p.numel() for p in RecurrentCrossAttention(64, 8, num_iters=1).parameters())
    n6 = sum(p.numel() for p in RecurrentCrossAttention(64, 8, num_iters=6).parameters())
    assert n1 == n6 == 3 * (64 * 64 + 64)


def test_gradients_reach_every_iteration():
    torch.manual_seed(0)
    rca = RecurrentCrossAttention(16, num_heads=2, num_iters=4)
    c = torch.randn(1, 5, 16, requires_grad=True)
    out = rca(c, torch.randn(1, 40, 16))
    for t, a in enumerate(out['assigns']):
        g_c, g_q = torch.autograd.grad((a * torch.randn_like(a)).sum(), [c, rca.q_proj.weight],
                                       retain_graph=True)
        assert g_c.abs().sum() > 0, f'no gradient from E-step {t} to the initial centers'
        assert g_q.abs().sum() > 0, f'no gradient from E-step {t} to the shared Q weights'
    # the last E-step depends on every earlier M-step: its grad w.r.t. C0 goes through them
    assert len(out['iter_centers']) == 4


@pytest.mark.parametrize('variant', ['recurrent', 'vanilla', 'kmeans'])
def test_variant_shapes_and_normalisation(variant):
    rca = RecurrentCrossAttention(32, num_heads=4, num_iters=2, variant=variant)
    out = rca(torch.randn(3, 7, 32), torch.randn(3, 25, 32))
    assert out['centers'].shape == (3, 7, 32)
    assert [a.shape for a in out['assigns']] == [(3, 7, 25)] * 2
    a = out['assigns'][-1]
    if variant == 'vanilla':  # softmax over pixels
        torch.testing.assert_close(a.sum(2), torch.ones(3, 7))
    else:  # over clusters
        torch.testing.assert_close(a.sum(1), torch.ones(3, 25))
    if variant == 'kmeans':  # one-hot per head, averaged over heads
        per_head = rca.e_step(torch.randn(3, 4, 7, 8), torch.randn(3, 4, 25, 8))[1]
        assert set(per_head.unique().tolist()) <= {0.0, 1.0}


def test_key_padding_mask_excludes_pixels():
    torch.manual_seed(0)
    rca = RecurrentCrossAttention(8, num_heads=2, num_iters=2)
    c, x = torch.randn(1, 3, 8), torch.randn(1, 20, 8)
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[0, 10:] = True
    a = rca(c, x, key_padding_mask=mask)
    b = rca(c, x[:, :10])
    torch.testing.assert_close(a['centers'], b['centers'])
    assert a['assigns'][0][0, :, 10:].abs().max() == 0


def test_fp32_island_under_autocast():
    rca = RecurrentCrossAttention(16, num_heads=2, num_iters=2)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = rca(torch.randn(1, 4, 16), torch.randn(1, 30, 16))
    assert out['assigns'][0].dtype == torch.float32
    torch.testing.assert_close(out['assigns'][0].sum(1), torch.ones(1, 30))


@pytest.mark.parametrize('kwargs,key', [
    (dict(num_iters=0), 'num_iters'),
    (dict(variant='hard'), 'variant'),
    (dict(embed_dims=30, num_heads=4), 'num_heads'),
])
def test_bad_arguments_name_the_key(kwargs, key):
    args = dict(embed_dims=32, num_heads=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=key):
        RecurrentCrossAttention(**args)


def test_unknown_variant_lists_allowed_values():
    with pytest.raises(ValueError, match="not a registered E-step variant.*'kmeans'.*'recurrent'"):
        RecurrentCrossAttention(32, 4, variant='em')


@pytest.mark.parametrize('variant', ['gumbel', 'kmeans'])
def test_one_hot_m_step_keeps_empty_clusters_gradient_bounded(variant):
    """A one-hot E-step leaves clusters without pixels (here 64 clusters, 40 pixels). Their mean
    M-step divides by a pixel count floored at 1 (``EStepVariant.m_step_mass``): the center is
    0, the other centers are the plain means of their pixels, and the straight-through
    gradient stays on the scale of the values. With ``mass + eps`` it was about 1 / eps = 1e6
    times larger."""
    torch.manual_seed(0)
    rca = RecurrentCrossAttention(8, num_heads=1, num_iters=1, variant=variant).train()
    logits = torch.randn(1, 1, 40, 64, requires_grad=True)  # B x h x N x K
    assign = rca.variant.assign(logits, logits.softmax(-1), None, cluster_dim=-1, pixel_dim=-2)
    v = torch.randn(1, 1, 40, 8)
    out = rca.m_step_update(assign, v)  # B x h x K x d
    assign = assign.transpose(-1, -2)  # B x h x K x N, to read per cluster below
    counts = assign.detach().sum(-1)[0, 0]
    empty = counts == 0
    assert empty.sum() >= 24
    assert out[0, 0, empty].abs().max() == 0
    for k in torch.nonzero(~empty)[:, 0].tolist():
        members = assign.detach()[0, 0, k] > 0.5
        torch.testing.assert_close(out[0, 0, k], v[0, 0, members].mean(0))
    if variant == 'kmeans':  # kMaX's hard argmax passes no gradient (the E-step loss trains Q/K)
        assert not out.requires_grad
        return
    (out * torch.randn_like(out)).sum().backward()  # straight-through: reaches the logits
    assert logits.grad.abs().max() < 10 * v.abs().max()


@pytest.mark.parametrize('autocast', [False, True])
def test_keys_and_values_are_laid_out_once_not_per_round(autocast):
    """K and V are projected (Eq. 10) and made head-major (and fp32, the E/M steps' dtype,
    under autocast) once; no E/M round copies or converts a pixel-sized tensor beyond its
    maps: the copies and conversions of B x N x D-sized tensors do not grow with T, and each
    round's centers come out contiguous (the linears reading them need no copy)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Copies(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.sizes = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func._schema.name in ('aten::clone', 'aten::copy_', 'aten::contiguous',
                                     'aten::_to_copy'):
                self.sizes.append(args[0].numel())
            return func(*args, **(kwargs or {}))

    b, n, d, k = 2, 60, 16, 5
    feats = torch.randn(b, d, n).transpose(1, 2)  # pixel-major view, as the decoder's
    counts = []
    for t in (1, 3):
        torch.manual_seed(0)
        rca = RecurrentCrossAttention(d, num_heads=4, num_iters=t)
        mode = Copies()
        with mode, torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
            out = rca(torch.randn(b, k, d), feats, return_maps=False)
        counts.append(sum(s == b * n * d for s in mode.sizes))
        assert all(c.is_contiguous() for c in out['iter_centers'])
    # fp32: K and V laid out; bf16: also the projections' inputs and outputs converted
    assert counts[0] == counts[1] <= (8 if autocast else 4), counts


def _plain_multi_head_em(rca, c, x, center_pos, feat_pos, pad):
    """Eq. 10 with several heads, written plainly: K from the features plus their position
    codes, V from the features alone, both projected once; per round Q from the centers plus
    theirs, logits scaled by 1/sqrt(D / h), softmax over the K clusters (zero on padding), mean
    M-step per head, heads concatenated; the E-step maps averaged over the heads."""
    b, n, dims = x.shape
    h = rca.num_heads
    d = dims // h

    def split(t):  # B x L x D -> B x h x L x d
        return t.view(b, -1, h, d).transpose(1, 2)

    k, v = split(rca.k_proj(x + feat_pos)), split(rca.v_proj(x))
    probs = []
    for _ in range(rca.num_iters):
        q = split(rca.q_proj(c + center_pos))
        m = (torch.einsum('bhkd,bhnd->bhkn', q, k) * d ** -0.5).softmax(dim=2)
        m = m.masked_fill(pad[:, None, None, :], 0.0)
        c = torch.einsum('bhkn,bhnd->bhkd', m, v) / (m.sum(-1, keepdim=True) + rca.eps)
        c = c.transpose(1, 2).reshape(b, -1, dims)
        probs.append(m.mean(1))
    return c, probs


def test_multi_head_rounds_with_positions_match_plain_eq10_values_and_gradients():
    """Several heads, position codes on Q's and K's inputs (not V's), the default scale
    1/sqrt(D / h), padding: centers, head-averaged maps and every gradient equal the plain
    form. (The one-head numpy test above cannot see the heads, the positions or the scale;
    the maps' head-mean has its own backward, checked here through the gradients.)"""
    torch.manual_seed(0)
    rca = RecurrentCrossAttention(16, num_heads=4, num_iters=3)  # E/M in fp32
    c, cpos = (torch.randn(2, 5, 16, requires_grad=True) for _ in range(2))
    x, xpos = (torch.randn(2, 30, 16, requires_grad=True) for _ in range(2))
    pad = torch.zeros(2, 30, dtype=torch.bool)
    pad[1, 24:] = True
    out = rca(c, x, key_padding_mask=pad, center_pos=cpos, feat_pos=xpos)
    ref_c, ref_p = _plain_multi_head_em(rca, c, x, cpos, xpos, pad)
    torch.testing.assert_close(out['centers'], ref_c)
    for got, want in zip(out['probs'], ref_p):
        torch.testing.assert_close(got, want)
    weights = [torch.randn_like(ref_c)] + [torch.randn_like(p) for p in ref_p]
    inputs = [c, x, cpos, xpos] + list(rca.parameters())

    def grads(centers, probs):
        total = (centers * weights[0]).sum() + sum((p * w).sum()
                                                   for p, w in zip(probs, weights[1:]))
        return torch.autograd.grad(total, inputs)

    for got, want in zip(grads(out['centers'], out['probs']), grads(ref_c, ref_p)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('training', [False, True])
@pytest.mark.parametrize('variant', ['recurrent', 'vanilla', 'kmeans', 'gumbel'])
def test_key_padding_mask_excludes_pixels_for_every_variant(variant, training):
    """Padded pixels get no assignment and their content does not reach the centers, in the
    Table 4c variants too (softmax over pixels, hard argmax, Gumbel with its training noise)."""
    import copy
    torch.manual_seed(0)
    rca = RecurrentCrossAttention(8, num_heads=2, num_iters=2, variant=variant)
    rca.train(training)
    c, x = torch.randn(1, 3, 8), torch.randn(1, 20, 8)
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[0, 10:] = True
    same_draws = copy.deepcopy(rca)  # the Gumbel noise: the same draw for both calls
    a = rca(c, x, key_padding_mask=mask)
    changed = x.clone()
    changed[0, 10:] = 50.0 * torch.randn(10, 8)  # padded content must not matter
    b = same_draws(c, changed, key_padding_mask=mask)
    torch.testing.assert_close(a['centers'], b['centers'])
    for maps in (a['assigns'], a['probs']):
        assert maps[0][0, :, 10:].abs().max() == 0


def test_gumbel_e_step_trains_on_the_noisy_logits(monkeypatch):
    """In training the Gumbel variant is the one-hot argmax of the logits plus Gumbel noise
    -log(-log u), with the gradient of the softmax of those noisy logits (straight-through);
    the noise changes some assignments. At test, the plain argmax."""
    from clustseg.models.e_steps import GumbelHardAssignment
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 40, 6, requires_grad=True)  # B x h x N x K
    u = torch.rand(logits.shape).clamp(0.01, 0.99)
    monkeypatch.setattr(torch, 'rand', lambda *a, **k: u.clone())
    step = GumbelHardAssignment().train()
    out = step.assign(logits, None, None, cluster_dim=-1, pixel_dim=-2)
    noisy = logits - torch.log(-torch.log(u))
    want = torch.nn.functional.one_hot(noisy.argmax(-1), 6).float()
    torch.testing.assert_close(out.detach(), want)
    assert (noisy.argmax(-1) != logits.argmax(-1)).any()  # the noise matters here
    w = torch.randn_like(out)
    got = torch.autograd.grad((out * w).sum(), logits)[0]
    ref = torch.autograd.grad((noisy.softmax(-1) * w).sum(), logits)[0]
    torch.testing.assert_close(got, ref)
    monkeypatch.undo()
    test = GumbelHardAssignment().eval().assign(logits, None, None, cluster_dim=-1, pixel_dim=-2)
    torch.testing.assert_close(test, torch.nn.functional.one_hot(logits.argmax(-1), 6).float())


def test_unshared_rounds_use_their_own_projections():
    """shared_iters=False (Table 5): round t's centers depend on round t's Q / K / V
    projections and on none of a later round's."""
    torch.manual_seed(0)
    rca = RecurrentCrossAttention(8, num_heads=2, num_iters=3, shared_iters=False)
    out = rca(torch.randn(1, 4, 8), torch.randn(1, 20, 8))
    for t, centers in enumerate(out['iter_centers']):
        projs = [p[r].weight for r in range(3) for p in (rca.q_projs, rca.k_projs, rca.v_projs)]
        grads = torch.autograd.grad(centers.pow(2).sum(), projs, retain_graph=True,
                                    allow_unused=True)
        assert all(g is not None and g.abs().sum() > 0 for g in grads[3 * t:3 * t + 3]), t
        assert all(g is None or g.abs().sum() == 0 for g in grads[3 * t + 3:]), t
