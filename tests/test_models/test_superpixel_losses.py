import math

import pytest
import torch

from clustseg.models.losses import (LAB_SCALE, SLICLoss, SuperpixelReconstructionLoss,
                                    lab_target, pixel_coords, reconstruction_loss, remap_labels,
                                    rgb_to_lab, slic_loss, soft_reconstruct)


def _halves():
    """4x4 image, top 2x4 half = region 0, bottom half = region 1; hard matching assign."""
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[:, 2:] = 1
    assign = torch.stack([(labels == 0).float(), (labels == 1).float()], 1).flatten(2)
    return assign, labels  # 1 x 2 x 16, 1 x 4 x 4


def _random_assign(b, k, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, k, n, generator=g).softmax(dim=1)


def _reference_slic(assign, labels, valid, coords, m, S, eps=1e-8):
    """Brute-force per-image, per-region reference in float64."""
    assign, coords = assign.double(), coords.double()
    b, k, n = assign.shape
    sem_sum, pos_sum, count = 0.0, 0.0, 0
    for bi in range(b):
        idx = [i for i in range(n) if valid[bi, i]]
        regions = sorted({int(labels[bi, i]) for i in idx})
        s = math.sqrt(n / k) if S is None else S  # the seeds' spacing over the whole map
        a = assign[bi]
        mass = a[:, idx].sum(1)
        mean_xy = (a[:, idx] @ coords[idx]) / (mass[:, None] + eps)
        mean_lab = {}
        for r in regions:
            sel = [i for i in idx if int(labels[bi, i]) == r]
            mean_lab[r] = a[:, sel].sum(1) / (mass + eps)
        for i in idx:
            p = (a[:, i] * mean_lab[int(labels[bi, i])]).sum()
            sem_sum += -math.log(float(p) + eps)
            pos_sum += m / s * float(torch.linalg.norm(a[:, i] @ mean_xy - coords[i]))
            count += 1
    return sem_sum / count, pos_sum / count


def test_pixel_coords_row_major():
    c = pixel_coords(2, 3)
    assert c.shape == (6, 2)
    assert c[4].tolist() == [1.0, 1.0]  # i = y * w + x = 1 * 3 + 1
    assert c[2].tolist() == [2.0, 0.0]


def test_hard_assignment_matching_regions():
    assign, labels = _halves()
    coords = pixel_coords(4, 4)
    out = slic_loss(assign, labels, coords, m=1.0, S=2.0)
    assert out['sem'].abs() < 1e-6
    # centroid of each 2x4 half is (1.5, 0.5) / (1.5, 2.5): |dx| in {0.5, 1.5}, |dy| = 0.5
    mean_dist = (math.sqrt(1.5**2 + 0.25) + math.sqrt(0.5**2 + 0.25)) / 2
    assert out['pos'].item() == pytest.approx(mean_dist / 2.0, rel=1e-5)
    assert out['total'].item() == pytest.approx(out['sem'].item() + out['pos'].item())
    # default S = sqrt(N / K) = sqrt(8) and default m = 0.003
    out = slic_loss(assign, labels, coords)
    assert out['pos'].item() == pytest.approx(0.003 * mean_dist / math.sqrt(8), rel=1e-5)
    # ignored or padded pixels do not change S: the seeds are spaced over the whole map
    valid = torch.ones(1, 16, dtype=torch.bool)
    valid[0, 12:] = False  # the bottom row
    out = slic_loss(assign, labels, coords, valid=valid, m=1.0)
    sem, pos = _reference_slic(assign, labels.flatten(1), valid, coords, 1.0, math.sqrt(8))
    assert out['sem'].item() == pytest.approx(sem, rel=1e-5, abs=1e-6)
    assert out['pos'].item() == pytest.approx(pos, rel=1e-5)


def test_uniform_assignment_entropy():
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    labels[:, 1:] = 5  # 4 pixels vs 12 pixels
    assign = torch.full((1, 3, 16), 1.0 / 3)
    coords = pixel_coords(4, 4)
    out = slic_loss(assign, labels, coords, m=1.0, S=1.0)
    p = torch.tensor([0.25, 0.75])
    assert out['sem'].item() == pytest.approx(float(-(p * p.log()).sum()), rel=1e-5)
    # every pixel is reconstructed at the image centroid (1.5, 1.5)
    expected = (coords - 1.5).norm(dim=1).mean().item()
    assert out['pos'].item() == pytest.approx(expected, rel=1e-5)


def test_matches_bruteforce_reference_with_masks():
    b, k, h, w = 2, 5, 4, 5
    n = h * w
    assign = _random_assign(b, k, n, seed=1)
    g = torch.Generator().manual_seed(2)
    labels = torch.tensor([3, 70, 1999])[torch.randint(0, 3, (b, n), generator=g)]
    labels[1] = torch.tensor([8, 9])[torch.randint(0, 2, (n, ), generator=g)]
    labels[0, :3] = -1
    valid = torch.ones(b, n, dtype=torch.bool)
    valid[1, -4:] = False
    coords = pixel_coords(h, w)
    for S in (None, 1.7):
        out = slic_loss(assign, labels, coords, valid=valid, m=0.5, S=S)
        sem, pos = _reference_slic(assign, labels, valid & (labels != -1), coords, 0.5, S)
        assert out['sem'].item() == pytest.approx(sem, rel=1e-5, abs=1e-6)
        assert out['pos'].item() == pytest.approx(pos, rel=1e-5)


def test_large_noncontiguous_ids_and_remap():
    assign, labels = _halves()
    coords = pixel_coords(4, 4)
    big = torch.where(labels == 0, torch.tensor(1000), torch.tensor(2047))
    a = slic_loss(assign, labels, coords, m=1.0, S=2.0)
    c = slic_loss(assign, big, coords, m=1.0, S=2.0)
    assert torch.allclose(a['total'], c['total'])
    local, counts = remap_labels(
        torch.tensor([[2047, 5, 1000, 5], [7, 7, -1, 123456789]]),
        torch.tensor([[True] * 4, [True, True, False, True]]))
    assert local.tolist() == [[2, 0, 1, 0], [0, 0, 0, 1]]
    assert counts.tolist() == [3, 2]


def test_ignored_and_invalid_pixels_do_not_matter():
    b, k, h, w = 2, 4, 4, 4
    assign = _random_assign(b, k, h * w, seed=3)
    g = torch.Generator().manual_seed(4)
    labels = torch.randint(0, 3, (b, h, w), generator=g)
    labels[0, 0] = -1
    valid = torch.ones(b, h, w, dtype=torch.bool)
    valid[1, :, 3] = False
    coords = pixel_coords(h, w)
    ref = slic_loss(assign, labels, coords, valid=valid)['total']
    labels2 = labels.clone()
    labels2[1, :, 3] = 9  # invalid pixels get another label
    assign2 = assign.clone()
    assign2[0, :, :4] = _random_assign(1, k, 4, seed=5)[0]  # ignored row gets another assign
    assign2[1, :, 3::4] = _random_assign(1, k, 4, seed=6)[0]
    out = slic_loss(assign2, labels2, coords, valid=valid)['total']
    assert torch.allclose(ref, out, atol=1e-6)
    # but changing a valid pixel changes the loss
    labels2[1, 0, 0] = 7
    assert not torch.allclose(ref, slic_loss(assign2, labels2, coords, valid=valid)['total'])
    # everything ignored: zero loss, still differentiable
    logits = torch.randn(b, k, h * w, requires_grad=True)
    out = slic_loss(logits.softmax(1), torch.full((b, h, w), -1), coords)
    out['total'].backward()
    assert out['total'].item() == 0.0 and torch.isfinite(logits.grad).all()


def test_gradients_flow_to_assign():
    logits = torch.randn(2, 6, 25, requires_grad=True)
    labels = torch.randint(0, 4, (2, 5, 5))
    out = slic_loss(logits.softmax(1), labels, pixel_coords(5, 5))
    out['total'].backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    logits.grad = None
    target = torch.rand(2, 25, 3)
    reconstruction_loss(logits.softmax(1), target).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # hard assign with a pixel exactly at its centroid (zero distance) stays finite
    hard = torch.eye(3)[None].clone().requires_grad_(True)  # each pixel its own cluster
    out = slic_loss(hard, torch.tensor([[0, 1, 2]]), pixel_coords(1, 3))
    out['total'].backward()
    assert torch.isfinite(hard.grad).all()


def test_soft_reconstruct_constant_is_exact():
    assign = _random_assign(2, 7, 12, seed=7)
    const = torch.tensor([0.3, -0.2, 0.9])
    target = const.expand(2, 12, 3)
    valid = torch.rand(2, 12) > 0.3
    valid[:, 0] = True
    recon = soft_reconstruct(assign, target, valid)
    assert torch.allclose(recon, target, atol=1e-6)
    assert reconstruction_loss(assign, target, valid).item() == pytest.approx(0, abs=1e-10)
    # a non-constant target gives a positive loss; a hard assign per pixel is exact
    t = torch.rand(2, 12, 3)
    assert reconstruction_loss(assign, t).item() > 0
    eye = torch.eye(12).expand(2, 12, 12)
    assert reconstruction_loss(eye, t).item() == pytest.approx(0, abs=1e-10)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_low_precision_inputs_give_fp32(dtype):
    assign = _random_assign(2, 5, 16, seed=8)
    labels = torch.randint(0, 3, (2, 4, 4))
    coords = pixel_coords(4, 4)
    ref = slic_loss(assign, labels, coords)
    out = slic_loss(assign.to(dtype), labels, coords.to(dtype))
    assert out['total'].dtype == torch.float32
    assert out['total'].item() == pytest.approx(ref['total'].item(), rel=2e-2)
    target = torch.rand(2, 16, 3)
    r = reconstruction_loss(assign.to(dtype), target.to(dtype))
    assert r.dtype == torch.float32
    assert r.item() == pytest.approx(reconstruction_loss(assign, target).item(), rel=5e-2)
    assert rgb_to_lab(torch.rand(1, 3, 2, 2).to(dtype)).dtype == torch.float32


def test_rgb_to_lab_known_colours():
    colours = torch.tensor([[1., 1., 1.], [1., 0., 0.], [0., 0., 0.], [0., 1., 0.]])
    lab = rgb_to_lab(colours.t().reshape(1, 3, 2, 2))[0].reshape(3, 4).t()
    assert lab[0].tolist() == pytest.approx([100.0, 0.0, 0.0], abs=1e-2)
    assert lab[1].tolist() == pytest.approx([53.24, 80.09, 67.20], abs=5e-2)
    assert lab[2].tolist() == pytest.approx([0.0, 0.0, 0.0], abs=1e-4)
    assert lab[3].tolist() == pytest.approx([87.73, -86.18, 83.18], abs=5e-2)
    # lab_target: BGR 0..255 input, scaled by (100, 110, 110)
    red_bgr = torch.tensor([0, 0, 255], dtype=torch.uint8).view(1, 3, 1, 1)
    t = lab_target(red_bgr).flatten()
    assert t.tolist() == pytest.approx([0.5324, 80.09 / 110, 67.20 / 110], abs=1e-3)
    # gradients through the conversion are finite, also at 0
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1).requires_grad_(True)
    rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_shape_errors_name_argument():
    assign = _random_assign(1, 2, 16)
    labels = torch.zeros(1, 4, 4, dtype=torch.long)
    coords = pixel_coords(4, 4)
    with pytest.raises(ValueError, match='assign'):
        slic_loss(assign[0], labels, coords)
    with pytest.raises(ValueError, match='labels'):
        slic_loss(assign, labels[:, :3], coords)
    with pytest.raises(ValueError, match='coords'):
        slic_loss(assign, labels, coords[:, :1])
    with pytest.raises(ValueError, match='valid'):
        slic_loss(assign, labels, coords, valid=torch.ones(1, 15, dtype=torch.bool))
    with pytest.raises(ValueError, match='S'):
        slic_loss(assign, labels, coords, S=torch.ones(3))
    with pytest.raises(ValueError, match='target'):
        reconstruction_loss(assign, torch.rand(1, 15, 3))
    with pytest.raises(ValueError, match='img'):
        rgb_to_lab(torch.rand(1, 4, 2, 2))
    with pytest.raises(ValueError, match='img_lab_target'):
        SuperpixelReconstructionLoss()(assign, torch.rand(1, 16, 3))


def test_registered_wrappers():
    from clustseg.registry import MODELS
    slic = MODELS.build(dict(type='SLICLoss', loss_weight=2.0, pos_weight=1.0,
                             label_weight=3.0))
    assert isinstance(slic, SLICLoss)
    assign = _random_assign(2, 4, 16, seed=9)
    labels = torch.randint(0, 3, (2, 4, 4))
    valid = torch.ones(2, 4, 4, dtype=torch.bool)
    valid[:, :, 3] = False
    out = slic(assign, labels, valid=valid, S=2.0)
    ref = slic_loss(assign, labels, pixel_coords(4, 4), valid=valid, m=1.0, S=2.0)
    assert set(out) == {'loss_slic_sem', 'loss_slic_pos'}
    assert out['loss_slic_sem'].item() == pytest.approx(6.0 * ref['sem'].item(), rel=1e-6)
    assert out['loss_slic_pos'].item() == pytest.approx(2.0 * ref['pos'].item(), rel=1e-6)

    rec = MODELS.build(dict(type='SuperpixelReconstructionLoss', beta=0.5))
    assert rec.loss_weight == 10.0
    img = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    target = lab_target(img)  # B x 3 x H x W
    loss = rec(assign, target, valid=valid)
    flat = target.flatten(2).transpose(1, 2)
    expected = 10.0 * reconstruction_loss(assign, flat, valid=valid, beta=0.5)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_lab_target_table_path_equals_the_formula():
    """8-bit images (also de-normalised with float noise) take the 256-level table; the
    result is the formula's, and non-integral or differentiable inputs use the formula."""
    from clustseg.models.losses.superpixel_losses import _linear_to_lab, _srgb_linear
    torch.manual_seed(0)
    img = torch.randint(0, 256, (2, 3, 17, 23)).float()
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    noisy = (img - mean) / std * std + mean  # what the segmentor's de-normalisation gives
    scale = torch.tensor(LAB_SCALE).view(1, 3, 1, 1)
    exact = _linear_to_lab(_srgb_linear(img.flip(1) / 255.0)) / scale
    torch.testing.assert_close(lab_target(img), exact, rtol=0, atol=1e-6)
    torch.testing.assert_close(lab_target(noisy), exact, rtol=0, atol=1e-6)
    frac = img + 0.37
    torch.testing.assert_close(lab_target(frac, bgr=False),
                               _linear_to_lab(_srgb_linear(frac / 255.0)) / scale,
                               rtol=0, atol=0)
    grad_in = img.clone().requires_grad_(True)
    lab_target(grad_in).sum().backward()
    assert torch.isfinite(grad_in.grad).all() and grad_in.grad.abs().sum() > 0
