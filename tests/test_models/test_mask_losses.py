"""Mask-classification losses (panoptic: kMaX-DeepLab terms; instance: Mask2Former terms)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.task_modules.assigners import AssignResult
from mmdet.registry import MODELS as DET_MODELS
from mmseg.registry import MODELS as SEG_MODELS

from clustseg.models.losses import (area_weighted_sample, build_query_targets,
                                    binary_corner_codes, gather_log_softmax, gather_matched,
                                    gt_queries, kept_pair_logsumexp,
                                    inverse_segment_area, mask_bce_dice_terms,
                                    mask_id_cross_entropy, matched_mask_terms, pad_stack,
                                    pixelwise_instance_discrimination_loss, pq_style_loss,
                                    read_binary_points, read_mask_points, semantic_aux_loss,
                                    sigmoid_class_loss, uncertain_point_coords, void_pixels,
                                    void_ratio)

LOG2, LOG3 = math.log(2.0), math.log(3.0)


# --- targets
def test_build_query_targets_scatters_matched_gt():
    m0 = torch.tensor([[[1, 0], [0, 0]], [[0, 1], [1, 1]]], dtype=torch.bool)  # 2 x 2 x 2
    m1 = torch.tensor([[[0, 0], [1, 0]]], dtype=torch.bool)
    a0 = torch.tensor([2, 0, 1])  # q0 <- gt1, q2 <- gt0
    a1 = AssignResult(num_gts=1, gt_inds=torch.tensor([0, 1, -1]), max_overlaps=None,
                      labels=torch.tensor([-1, 4, -1]))
    t = build_query_targets([a0, a1], [m0, m1], [torch.tensor([3, 7]), torch.tensor([4])],
                            num_classes=9)
    assert t.masks.shape == (2, 3, 2, 2) and t.masks.dtype == torch.float32
    assert torch.equal(t.masks[0, 0], m0[1].float())
    assert torch.equal(t.masks[0, 2], m0[0].float())
    assert t.masks[0, 1].sum() == 0 and t.masks[1, 0].sum() == 0 and t.masks[1, 2].sum() == 0
    assert torch.equal(t.masks[1, 1], m1[0].float())
    assert t.labels.tolist() == [[7, 9, 3], [9, 4, 9]]
    assert t.matched.tolist() == [[True, False, True], [False, True, False]]
    # pixel (0, 0) of image 1 is covered by no matched GT
    assert void_pixels(t.masks).tolist() == [[False, False, False, False],
                                             [True, True, False, True]]


def test_pad_stack_zero_pads_over_segments():
    labels = pad_stack([torch.tensor([3, 7]), torch.zeros(0, dtype=torch.long),
                        torch.tensor([4])])
    assert labels.tolist() == [[3, 7], [0, 0], [4, 0]] and labels.dtype == torch.long
    masks = pad_stack([torch.zeros(0, 2, 3), torch.ones(1, 2, 3)])
    assert masks.shape == (2, 1, 2, 3) and masks[0].sum() == 0 and masks[1].sum() == 6
    # no segment in any image: one all-zero entry, so a gather has something to read
    assert pad_stack([torch.zeros(0, 4)]).shape == (1, 1, 4)


def test_gather_log_softmax_is_the_gathered_log_softmax_with_its_gradient():
    """Rows of the log-softmax over K (one query per row, -1 = zero row) from the logits and
    their logsumexp: the values of gather_matched(log_softmax) and, through the explicit
    backward, its gradient (numerical check in double, the normaliser's share included)."""
    torch.manual_seed(0)
    x = torch.randn(2, 5, 7, dtype=torch.double, requires_grad=True)
    rows = torch.tensor([[0, 3, -1], [4, 1, 2]])
    got = gather_log_softmax(x, rows, x.detach().logsumexp(1))
    ref = gather_matched(x.log_softmax(1), rows)
    torch.testing.assert_close(got, ref)
    assert got[0, 2].abs().sum() == 0
    g = torch.randn_like(got)
    torch.testing.assert_close(torch.autograd.grad((got * g).sum(), x)[0],
                               torch.autograd.grad((ref * g).sum(), x)[0])
    assert torch.autograd.gradcheck(
        lambda t: gather_log_softmax(t, rows, t.detach().logsumexp(1)), (x, ))


def test_gt_queries_inverts_a_matching():
    gt_index = torch.tensor([[[0, -1, 2, 1]], [[-1, -1, 0, -1]]])  # S x B x K
    assert gt_queries(gt_index, 3).tolist() == [[[0, 3, 2]], [[2, -1, -1]]]


def test_build_query_targets_rejects_bad_index():
    with pytest.raises(ValueError, match='names GT'):
        build_query_targets([torch.tensor([3, 0])], [torch.zeros(2, 2, 2)],
                            [torch.tensor([0, 1])], num_classes=2)


# --- PQ-style
def _pq_case():
    """1 x 4 image; GT segment (class 1) = pixels 0, 1 -> query 0; pixels 2, 3 void."""
    target = torch.zeros(1, 2, 1, 4)
    target[0, 0, 0, :2] = 1
    labels = torch.tensor([[1, 2]])  # 2 = void (C = 2)
    matched = torch.tensor([[True, False]])
    return target, labels, matched


def test_pq_style_loss_hand_computed():
    target, labels, matched = _pq_case()
    mask_logits = torch.zeros(1, 2, 1, 4)  # p = 0.5 everywhere
    cls_logits = torch.zeros(1, 2, 3)  # q = 1/3
    out = pq_style_loss(cls_logits, mask_logits, target, labels, matched)
    # query 0 on non-void pixels: p = [.5, .5], t = [1, 1]: dice = 1 - (2 + 1) / (1 + 2 + 1)
    dice = 1.0 - 3.0 / 4.0
    assert out['mask'].item() == pytest.approx(0.75 / 2 * (1.0 / 3.0) * dice, rel=1e-6)
    sim = 1.0 / (1.5 + 1e-5)  # <p, t> / ((|p| + |t|) / 2 + eps)
    ratio = 1.0 / (2.0 + 1e-5)  # query 1 has half its mass on void pixels
    expected_cls = (0.75 * sim * LOG3 + 0.25 * ratio * LOG3) / 2
    assert out['cls'].item() == pytest.approx(expected_cls, rel=1e-5)
    assert out['cls'].dtype == torch.float32
    # row form: the one GT segment's row (query 0's log-softmax), the void ratios given
    log_p = mask_logits.log_softmax(dim=1)
    non_void = target.sum(dim=1) >= 0.5
    ratios = void_ratio(log_p.exp(), non_void)
    assert ratios.tolist()[0] == pytest.approx([ratio, ratio])  # p = 0.5 on every pixel
    rows = pq_style_loss(cls_logits, log_p[:, :1], target[:, :1], labels, matched,
                         log_probs=True, row_query=torch.tensor([[0]]), void_ratios=ratios)
    for key in ('mask', 'cls'):
        assert rows[key].item() == pytest.approx(out[key].item(), rel=1e-6)
    with pytest.raises(ValueError, match='row form needs'):
        pq_style_loss(cls_logits, log_p[:, :1], target[:, :1], labels, matched,
                      row_query=torch.tensor([[0]]), void_ratios=ratios)


def test_pq_style_loss_perfect_prediction_is_zero():
    target, labels, matched = _pq_case()
    mask_logits = torch.tensor([[[[20., 20., -20., -20.]], [[-20., -20., 20., 20.]]]])
    cls_logits = torch.tensor([[[-20., 20., -20.], [-20., -20., 20.]]])
    out = pq_style_loss(cls_logits, mask_logits, target, labels, matched)
    assert out['mask'].item() < 1e-6 and out['cls'].item() < 1e-6


def test_pq_style_loss_weights_are_detached_and_gradients_flow():
    target, labels, matched = _pq_case()
    g = torch.Generator().manual_seed(0)
    mask_logits = torch.randn(1, 2, 1, 4, generator=g, requires_grad=True)
    cls_logits = torch.randn(1, 2, 3, generator=g, requires_grad=True)
    out = pq_style_loss(cls_logits, mask_logits, target, labels, matched)
    gm, gc = torch.autograd.grad(out['mask'], [mask_logits, cls_logits], allow_unused=True)
    assert gm is not None and gm.abs().sum() > 0
    assert gc is None or gc.abs().sum() == 0  # class prob weight is detached
    gm, gc = torch.autograd.grad(out['cls'], [mask_logits, cls_logits], allow_unused=True)
    assert gc is not None and gc.abs().sum() > 0
    assert gm is None or gm.abs().sum() == 0  # dice weight is detached


def test_pq_style_loss_ignores_void_pixels_in_mask_term():
    target, labels, matched = _pq_case()
    base = torch.zeros(1, 2, 1, 4)
    changed = base.clone()
    changed[0, :, 0, 2:] = torch.tensor([[5.0, -3.0], [-1.0, 4.0]])  # void pixels only
    cls = torch.zeros(1, 2, 3)
    a = pq_style_loss(cls, base, target, labels, matched)['mask']
    b = pq_style_loss(cls, changed, target, labels, matched)['mask']
    assert a.item() == pytest.approx(b.item(), abs=1e-7)
    # an explicit valid mask makes pixel 1 void too: dice of p = [.5], t = [1]
    v = torch.tensor([[True, False, True, True]])
    c = pq_style_loss(cls, base, target, labels, matched, valid=v)['mask']
    assert c.item() == pytest.approx(0.75 / 2 / 3 * (1 - 2.0 / 2.5), rel=1e-6)


def test_pq_style_loss_under_autocast():
    target, labels, matched = _pq_case()
    g = torch.Generator().manual_seed(1)
    mask_logits, cls_logits = torch.randn(1, 2, 1, 4, generator=g), torch.randn(1, 2, 3,
                                                                               generator=g)
    ref = pq_style_loss(cls_logits, mask_logits, target, labels, matched)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = pq_style_loss(cls_logits.bfloat16(), mask_logits.bfloat16(), target, labels,
                            matched)
    assert out['mask'].dtype == torch.float32
    assert out['mask'].item() == pytest.approx(ref['mask'].item(), rel=2e-2)


def test_pq_style_loss_rejects_void_label_on_matched_query():
    target, _, matched = _pq_case()
    with pytest.raises(ValueError, match='void'):
        pq_style_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 1, 4), target,
                      torch.tensor([[2, 2]]), matched)


# --- mask-ID CE
def test_mask_id_cross_entropy_hand_computed_and_void():
    # 1 x 3 image: q0 <- pixel 0, q1 <- pixel 1, pixel 2 void
    t = torch.tensor([[[1., 0., 0.], [0., 1., 0.]]])
    assert mask_id_cross_entropy(torch.zeros(1, 2, 3), t).item() == pytest.approx(LOG2)
    logits = torch.tensor([[[1.0, 0.0, 7.0], [0.0, 2.0, -7.0]]])
    expected = (-F.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]
                - F.log_softmax(torch.tensor([0.0, 2.0]), 0)[1]) / 2
    assert mask_id_cross_entropy(logits, t).item() == pytest.approx(expected.item(), rel=1e-6)
    # valid=False on pixel 1 leaves pixel 0 only
    v = torch.tensor([[True, False, True]])
    exp0 = -F.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]
    assert mask_id_cross_entropy(logits, t, valid=v).item() == pytest.approx(exp0.item(),
                                                                            rel=1e-6)
    # perfect prediction
    assert mask_id_cross_entropy(torch.tensor([[[30., -30., 0.], [-30., 30., 0.]]]),
                                 t).item() < 1e-6


def test_mask_id_cross_entropy_per_image_mean_and_overlap():
    t = torch.zeros(2, 2, 2)
    t[0, 0, 0] = t[0, 1, 0] = 1  # image 0, pixel 0 covered by both queries (overlap)
    logits = torch.zeros(2, 2, 2)
    logits[0, :, 0] = torch.tensor([0.0, 1.0])
    lp = F.log_softmax(torch.tensor([0.0, 1.0]), 0)
    # image 0: one valid pixel with soft target (.5, .5); image 1: no valid pixel -> 0
    expected = (-(0.5 * lp[0] + 0.5 * lp[1])) / 2
    assert mask_id_cross_entropy(logits, t).item() == pytest.approx(expected.item(), rel=1e-6)


def test_mask_id_gradients():
    t = torch.tensor([[[1., 0.], [0., 1.]]])
    x = torch.zeros(1, 2, 2, requires_grad=True)
    mask_id_cross_entropy(x, t).backward()
    assert x.grad.abs().sum() > 0
    assert mask_id_cross_entropy(torch.zeros(1, 2, 2), t).item() == pytest.approx(LOG2)


# --- instance discrimination
def _insdis_case():
    """3 pixels, embeddings e1, e1, e2; segment 0 = pixels 0, 1, segment 1 = pixel 2."""
    f = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # B x C x HW
    g = torch.tensor([[[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # B x M x HW
    return f, g


def test_pixelwise_instance_discrimination_hand_computed():
    f, g = _insdis_case()
    tau = 0.3
    e = math.exp(-1.0 / tau)
    expected = (2 * math.log(2.0 + e) + math.log(1.0 + 2.0 * e)) / 3
    # every non-void pixel is drawn (3 <= num_samples): deterministic
    out = pixelwise_instance_discrimination_loss(f, g, num_samples=16, temperature=tau)
    assert out.item() == pytest.approx(expected, rel=1e-6)
    # a void pixel (no segment) is never drawn
    f4 = torch.cat([f, torch.tensor([[[0.0], [1.0]]])], dim=2)
    g4 = torch.cat([g, torch.zeros(1, 2, 1)], dim=2)
    out4 = pixelwise_instance_discrimination_loss(f4, g4, num_samples=4, temperature=tau)
    assert out4.item() == pytest.approx(expected, rel=1e-6)


def test_pixelwise_instance_discrimination_equals_the_pairwise_target_form():
    """The segment-factored form equals CE(softmax_j <f_i, f_j> / tau, same_ij / sum_j same_ij)
    built pairwise (kMaX's definition), for binary and soft overlapping masks, with void
    pixels and with fewer valid pixels than samples (dropped slots); gradients too."""
    def pairwise(feats, g, s, gen, tau=0.3):
        fl, gl = feats.flatten(2), g.flatten(2).float()
        idx, ok = area_weighted_sample(inverse_segment_area(gl), gl.sum(1) >= 0.5, s, 1.5, gen)
        gs = gl.gather(2, idx[:, None].expand(-1, gl.shape[1], -1))
        fs = fl.gather(2, idx[:, None].expand(-1, fl.shape[1], -1))
        okf = ok.float()
        same = torch.einsum('bms,bmt->bst', gs, gs) * okf[:, :, None]
        t = same / same.sum(1, keepdim=True).clamp(min=1)
        logits = torch.einsum('bcs,bct->bst', fs, fs) / tau + (1 - okf)[:, :, None] * -99999.0
        ce = -(t * logits.log_softmax(1)).sum(1)
        return ((ce * okf).sum(1) / okf.sum(1).clamp(min=1)).mean()

    torch.manual_seed(0)
    for soft in (False, True):
        feats = F.normalize(torch.randn(2, 8, 12, 10), dim=1).requires_grad_()
        g = (torch.rand(2, 5, 12, 10) < 0.3).float()
        if soft:
            g = g * torch.rand_like(g)
        g[1, :, :3] = 0  # void rows
        for s in (50, 200):  # 200 > valid pixels of image 1
            got = pixelwise_instance_discrimination_loss(
                feats, g, s, generator=torch.Generator().manual_seed(1))
            ref = pairwise(feats, g, s, torch.Generator().manual_seed(1))
            torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
            g_got, = torch.autograd.grad(got, feats)
            g_ref, = torch.autograd.grad(ref, feats)
            torch.testing.assert_close(g_got, g_ref, rtol=1e-4, atol=1e-6)


def test_kept_pair_logsumexp_in_chunks_is_the_masked_logsumexp_with_its_gradient():
    """Chunks smaller than S, dropped samples and an image with none kept: the values and,
    through the explicit backward, the gradient of the dense masked logsumexp (gradcheck in
    double)."""
    torch.manual_seed(0)
    f = torch.randn(3, 4, 7, dtype=torch.double, requires_grad=True)
    keep = torch.rand(3, 7) > 0.3
    keep[0, 0], keep[2] = False, False  # image 2: nothing kept -> 0, no gradient
    got = kept_pair_logsumexp(f, keep, 0.3, chunk=3)
    logits = torch.einsum('bcs,bct->bst', f, f) / 0.3
    ref = logits.masked_fill(~keep[:, :, None], float('-inf')).logsumexp(1)  # B x S(i)
    torch.testing.assert_close(got[:2], ref[:2])
    assert (got[2] == 0).all()
    g = torch.randn(3, 7, dtype=torch.double)
    grad_got, = torch.autograd.grad((got * g).sum(), f)
    grad_ref, = torch.autograd.grad((ref[:2] * g[:2]).sum(), f)
    torch.testing.assert_close(grad_got, grad_ref)
    assert torch.autograd.gradcheck(lambda t: kept_pair_logsumexp(t, keep, 0.3, chunk=3), (f, ))


def test_shared_log_softmax_gives_the_same_pq_and_mask_id_terms():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 5, 4)
    tgt = torch.zeros(2, 6, 5, 4)
    tgt[:, 0, :2], tgt[:, 3, 2:] = 1.0, 1.0
    matched = torch.zeros(2, 6, dtype=torch.bool)
    matched[:, [0, 3]] = True
    labels = torch.full((2, 6), 4)
    labels[:, 0], labels[:, 3] = 1, 2
    cls = torch.randn(2, 6, 5)
    log_p = logits.log_softmax(dim=1)
    a, b = pq_style_loss(cls, logits, tgt, labels, matched), \
        pq_style_loss(cls, log_p, tgt, labels, matched, log_probs=True)
    for k in ('cls', 'mask'):
        torch.testing.assert_close(a[k], b[k])
    torch.testing.assert_close(mask_id_cross_entropy(logits, tgt),
                               mask_id_cross_entropy(log_p, tgt, log_probs=True))
    # without the flag a log-probability input is not re-read as probabilities
    assert not torch.allclose(pq_style_loss(cls, log_p.exp(), tgt, labels, matched)['mask'],
                              a['mask'])


def test_area_weighted_sampling():
    # 10 pixels: segment A = 9 pixels, segment B = pixel 9
    g = torch.zeros(1, 2, 10)
    g[0, 0, :9] = 1
    g[0, 1, 9] = 1
    inv = inverse_segment_area(g)
    assert torch.allclose(inv, torch.tensor([[10 / 9] * 9 + [10.0]]))
    keep = torch.ones(1, 10, dtype=torch.bool)
    gen = torch.Generator().manual_seed(0)
    # P(B) / P(A) = 10**10 / (9 * (10/9)**10): the single draw is pixel 9
    idx, ok = area_weighted_sample(inv, keep, 1, temperature=10.0, generator=gen)
    assert idx.tolist() == [[9]] and ok.all()
    keep[0, 3:] = False
    idx, ok = area_weighted_sample(inv, keep, 5, temperature=1.0, generator=gen)
    assert sorted(idx[0][ok[0]].tolist()) == [0, 1, 2] and ok.sum() == 3


# --- semantic aux
def test_semantic_aux_dense_equals_mmseg_cross_entropy_for_one_image():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 4, 3, 5, generator=gen)
    gt = torch.randint(0, 4, (1, 3, 5), generator=gen)
    gt[0, 0, :2] = 255
    ours = semantic_aux_loss(logits, gt, num_samples=0)
    mmseg_ce = SEG_MODELS.build(dict(type='mmseg.CrossEntropyLoss', avg_non_ignore=True))
    ref = mmseg_ce(logits, gt, ignore_index=255)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-6)
    # all 13 valid pixels drawn -> sampled == dense
    sampled = semantic_aux_loss(logits, gt, num_samples=4096)
    assert sampled.item() == pytest.approx(ours.item(), rel=1e-6)


def test_semantic_aux_per_image_mean_and_errors():
    logits = torch.zeros(2, 3, 1, 2)
    logits[0, 1, 0, 0] = 2.0
    gt = torch.tensor([[[1, 255]], [[0, 2]]])
    lp = F.log_softmax(torch.tensor([0.0, 2.0, 0.0]), 0)
    expected = (-lp[1] + LOG3) / 2  # image 0: one pixel; image 1: mean of two log 3
    assert semantic_aux_loss(logits, gt, num_samples=0).item() == pytest.approx(
        expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match='outside'):
        semantic_aux_loss(logits, torch.tensor([[[1, 3]], [[0, 2]]]), num_samples=0)


# --- instance protocol
def test_mask_bce_dice_matches_mmdet_mask2former_losses():
    """The per-mask terms summed over the masks and divided by their number are mmdet's
    Mask2Former mask losses (the normalisation of the instance head)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 50, generator=gen)
    t = (torch.rand(3, 50, generator=gen) > 0.5).float()
    bce_n, dice_n = mask_bce_dice_terms(x, t)
    assert bce_n.shape == dice_n.shape == (3, )
    bce = DET_MODELS.build(dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True,
                                reduction='mean'))
    dice = DET_MODELS.build(dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True,
                                 reduction='mean', naive_dice=True, eps=1.0))
    assert (bce_n.sum() / 3).item() == pytest.approx(
        bce(x.reshape(-1), t.reshape(-1), avg_factor=3 * 50).item(), rel=1e-6)
    assert (dice_n.sum() / 3).item() == pytest.approx(dice(x, t, avg_factor=3).item(), rel=1e-6)
    # hand case: logit 0 on a 2-point mask [1, 0]
    hand = mask_bce_dice_terms(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert hand[0].item() == pytest.approx(LOG2)
    assert hand[1].item() == pytest.approx(1.0 - 2.0 / 3.0)
    empty = mask_bce_dice_terms(torch.zeros(0, 4, requires_grad=True), torch.zeros(0, 4))[0]
    assert empty.shape == (0, ) and empty.sum().item() == 0 and empty.requires_grad


def test_mask_bce_dice_keep_reads_only_the_kept_points():
    """keep=: each mask's terms are those of its kept points alone (the BCE their mean, the
    dice over them), the gradient zero at the others; a mask with no kept point has BCE 0;
    a keep of another shape is an error."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 40, generator=gen, requires_grad=True)
    t = (torch.rand(3, 40, generator=gen) > 0.5).float()
    keep = torch.rand(3, 40, generator=gen) > 0.3
    keep[2] = False
    bce, dice = mask_bce_dice_terms(x, t, keep=keep)
    for i in range(2):
        ref = mask_bce_dice_terms(x[i, keep[i]][None], t[i, keep[i]][None])
        assert bce[i].item() == pytest.approx(ref[0].item(), rel=1e-6)
        assert dice[i].item() == pytest.approx(ref[1].item(), rel=1e-6)
    assert bce[2].item() == 0 and dice[2].item() == 0
    # every point kept: the unmasked terms
    full = mask_bce_dice_terms(x, t, keep=torch.ones_like(keep))
    torch.testing.assert_close(full, mask_bce_dice_terms(x, t))
    (bce.sum() + dice.sum()).backward()
    assert x.grad[~keep].abs().max().item() == 0 and x.grad[keep].abs().min().item() > 0
    with pytest.raises(ValueError, match='keep'):
        mask_bce_dice_terms(x, t, keep=keep[:, :10])


def test_uncertain_points_read_shapes_and_targets():
    """The instance head's point terms: points drawn on the detached logits
    (uncertain_point_coords), the logits read there with gradient (read_mask_points), the
    binary targets from their corner codes (read_binary_points)."""
    torch.manual_seed(0)
    logits = torch.randn(2, 8, 8, requires_grad=True)
    gt = torch.zeros(2, 32, 32)
    gt[1] = 1.0
    coords = uncertain_point_coords(logits.detach().unsqueeze(1), 20)
    pred_pts = read_mask_points(logits, coords)
    gt_pts = read_binary_points(binary_corner_codes(gt), coords)
    assert pred_pts.shape == (2, 20) and gt_pts.shape == (2, 20)
    assert torch.all(gt_pts[0] == 0)
    # mmcv's point_sample is bilinear with zero padding: a full mask reads 1 inside and
    # at least 1/4 on the border pixels
    assert torch.all(gt_pts[1] >= 0.25) and torch.all(gt_pts[1] <= 1.0)
    assert (gt_pts[1] == 1.0).sum() >= 10
    mask_bce_dice_terms(pred_pts, gt_pts)[0].sum().backward()
    assert logits.grad.abs().sum() > 0


def test_read_binary_points_is_mmcvs_point_sample_from_corner_codes():
    """Binary targets read at points from their corner codes (one byte per point) as
    point_sample reads the fp32 masks (bilinear, align_corners=False, zero outside), rows
    picked by an index, with points on pixel centres and on the border (0 and 1)."""
    from mmcv.ops import point_sample
    torch.manual_seed(0)
    masks = (torch.rand(5, 37, 23) > 0.5).to(torch.uint8)
    codes = binary_corner_codes(masks)
    assert codes.shape == (5, 38, 24) and codes.dtype == torch.uint8
    coords = torch.rand(3, 400, 2)
    coords[0, :4] = torch.tensor([[0., 0.], [1., 1.], [0.5 / 23, 0.5 / 37], [1., 0.]])
    coords[1, :100] = coords[1, :100].round()  # corners and edges
    index = torch.tensor([4, 0, 4])
    ref = point_sample(masks[index].float().unsqueeze(1), coords).squeeze(1)
    got = read_binary_points(codes, coords, index)
    assert got.dtype == torch.float32 and got.shape == (3, 400)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)
    assert got[0, 2].item() == masks[4, 0, 0].item()  # a pixel centre reads that pixel
    torch.testing.assert_close(read_binary_points(codes[:3], coords),
                               point_sample(masks[:3].float().unsqueeze(1), coords).squeeze(1),
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match='uint8'):
        read_binary_points(codes.float(), coords)


def test_uncertain_point_coords_draw_mmdets_point_set():
    """Same random draws and the same point set as mmdet's
    get_uncertain_point_coords_with_randomness (only the order of the uncertain points may
    differ: an unsorted top-k)."""
    from mmdet.models.utils import get_uncertain_point_coords_with_randomness

    from clustseg.models.losses import uncertain_point_coords
    m = torch.randn(7, 1, 16, 20)
    torch.manual_seed(3)
    ref = get_uncertain_point_coords_with_randomness(m, None, 500, 3.0, 0.75)
    torch.manual_seed(3)
    got = uncertain_point_coords(m, 500, 3.0, 0.75)
    assert got.shape == ref.shape == (7, 500, 2)
    for i in range(7):
        assert set(map(tuple, got[i, :375].tolist())) == set(map(tuple, ref[i, :375].tolist()))
    assert torch.equal(got[:, 375:], ref[:, 375:])  # the uniform remainder
    with pytest.raises(ValueError, match='oversample_ratio'):
        uncertain_point_coords(m, 10, 0.5, 0.75)


def test_sigmoid_class_loss_hand_computed():
    x = torch.tensor([[[1.0, -2.0], [0.5, 3.0], [9.0, 9.0]]])  # B=1, K=3, C=2
    y = torch.tensor([[0, 2, -1]])  # class 0, no object, ignored
    ls = F.logsigmoid
    l0 = -(ls(torch.tensor(1.0)) + ls(torch.tensor(2.0)))
    l1 = -(ls(torch.tensor(-0.5)) + ls(torch.tensor(-3.0)))
    expected = (l0 + 0.1 * l1) / 1.1
    assert sigmoid_class_loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    assert sigmoid_class_loss(x, y, no_object_weight=1.0).item() == pytest.approx(
        ((l0 + l1) / 2).item(), rel=1e-6)
    with pytest.raises(ValueError):
        sigmoid_class_loss(x, torch.tensor([[0, 3, 0]]))


def test_sigmoid_class_loss_per_query_factors_sum_the_stacked_predictions():
    """Two predictions stacked along the batch, each query over its own prediction's
    normaliser (a tensor avg_factor): the sum of the two losses."""
    torch.manual_seed(0)
    x = torch.randn(4, 5, 3)  # G = 2 predictions x B = 2 images, K = 5, C = 3
    y = torch.randint(0, 4, (4, 5))
    own = [sigmoid_class_loss(x[2 * g:2 * g + 2], y[2 * g:2 * g + 2]) for g in range(2)]
    w = torch.where(y == 3, 0.1, 1.0).view(2, -1).sum(1)  # each prediction's default factor
    got = sigmoid_class_loss(x, y, avg_factor=w.repeat_interleave(2)[:, None],
                             check_labels=False)
    torch.testing.assert_close(got, own[0] + own[1], rtol=1e-5, atol=1e-6)


def test_matched_mask_terms_softmax_hand_and_perfect():
    t = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # pixel 2 void
    sel = torch.tensor([[True, False]])
    _, ce, dice = matched_mask_terms(torch.zeros(1, 2, 3), t, sel)
    assert ce.item() == pytest.approx(LOG2, rel=1e-5)  # p = .5 on both valid pixels
    assert dice.item() == pytest.approx(1.0 - 2.0 / 3.0, rel=1e-6)
    perfect = torch.tensor([[[30.0, -30.0, 5.0], [-30.0, 30.0, -5.0]]])
    _, ce, dice = matched_mask_terms(perfect, t, torch.tensor([[True, True]]))
    assert ce.max().item() < 1e-5 and dice.max().item() < 1e-5
    x = torch.zeros(1, 2, 3, requires_grad=True)
    _, ce, dice = matched_mask_terms(x, t, sel)
    (ce.sum() + dice.sum()).backward()
    assert x.grad[0, :, :2].abs().sum() > 0 and x.grad[0, :, 2].abs().sum() == 0  # void


def test_matched_mask_terms_per_query_and_shared_log_probs():
    """Each selected query's CE / dice is its value computed alone (with the softmax over all
    K), in (image, query) order, and a caller's log-softmax gives the same values."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 5, 5, generator=gen)
    t = (torch.rand(2, 4, 5, 5, generator=gen) > 0.6).float()
    sel = torch.tensor([[True, False, True, False], [False, True, True, True]])
    idx, ce_q, dice_q = matched_mask_terms(x, t, sel)  # per selected query, (image, query)
    assert len(ce_q) == len(dice_q) == 5
    for i, (b, q) in enumerate(sel.nonzero().tolist()):
        one = torch.zeros_like(sel)
        one[b, q] = True
        _, ce, dice = matched_mask_terms(x, t, one)
        assert (idx[0][i].item(), idx[1][i].item()) == (b, q)
        assert ce_q[i].item() == pytest.approx(ce.item(), rel=1e-6)
        assert dice_q[i].item() == pytest.approx(dice.item(), rel=1e-6)
    # the caller's log-softmax is the one used (another map's gives that map's terms)
    shared = matched_mask_terms(x, t, sel, log_probs=(2 * x).log_softmax(dim=1))[1:]
    twice = matched_mask_terms(2 * x, t, sel)[1:]
    for s, w, o in zip(shared, twice, (ce_q, dice_q)):
        torch.testing.assert_close(s, w, rtol=1e-6, atol=0)
        assert (s - o).abs().max() > 1e-3
    xg = x.clone().requires_grad_(True)
    _, ce, dice = matched_mask_terms(xg, t, torch.zeros_like(sel))
    assert ce.shape == dice.shape == (0, )
    (ce.sum() + dice.sum()).backward()  # still in the graph: DDP sees every parameter
    assert xg.grad is not None and xg.grad.abs().sum() == 0


def test_matched_mask_terms_match_a_per_pixel_reference_with_void_and_padding():
    """B = 2 images with their own void pixels and padding: each selected query's CE / dice
    over its own image's kept pixels, written out pixel by pixel."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 4, 5, generator=gen)
    t = torch.zeros(2, 3, 4, 5)
    t[0, 0, :2], t[0, 1, 2:, :3] = 1, 1  # image 0: void at rows 2-3, columns 3-4
    t[1, 2, :, :4] = 1  # image 1: void in column 4
    valid = torch.ones(2, 4, 5, dtype=torch.bool)
    valid[1, 3] = False  # image 1: row 3 is padding
    sel = torch.tensor([[True, True, False], [False, False, True]])
    _, ce, dice = matched_mask_terms(x, t, sel, valid=valid)
    p = x.softmax(dim=1)
    for i, (b, q) in enumerate(sel.nonzero().tolist()):
        keep = (t[b].sum(0) > 0.5) & valid[b]
        pk, tk = p[b, q][keep], t[b, q][keep]
        assert ce[i].item() == pytest.approx(
            float(-(tk * pk.log() + (1 - tk) * (1 - pk).log()).mean()), rel=1e-5)
        assert dice[i].item() == pytest.approx(
            1 - float((2 * (pk * tk).sum() + 1) / (pk.sum() + tk.sum() + 1)), rel=1e-5)


def test_matched_mask_terms_sigmoid_equal_mask2former_dense():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 4, 4, generator=gen)
    t = torch.zeros(1, 3, 4, 4)
    t[0, 0, :2] = 1
    t[0, 2, 2:] = 1
    sel = torch.tensor([[True, False, True]])
    _, ce, dice = matched_mask_terms(x, t, sel, activation='sigmoid', ignore_void=False)
    bce, ref_dice = mask_bce_dice_terms(x[0, [0, 2]], t[0, [0, 2]])
    torch.testing.assert_close(ce, bce, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(dice, ref_dice, rtol=1e-5, atol=1e-7)


def test_pq_style_loss_names_bad_labels():
    """Labels outside [0, C] and a matched query with the void label C are errors (one host
    check for both)."""
    from clustseg.models.losses import pq_style_loss
    cls = torch.zeros(1, 2, 4)  # C = 3
    masks = torch.zeros(1, 2, 5)
    tgt = torch.zeros(1, 2, 5)
    matched = torch.tensor([[True, False]])
    with pytest.raises(ValueError, match=r'must lie in \[0, 3\]'):
        pq_style_loss(cls, masks, tgt, torch.tensor([[4, 3]]), matched)
    with pytest.raises(ValueError, match='a matched query has the void label'):
        pq_style_loss(cls, masks, tgt, torch.tensor([[3, 3]]), matched)
    out = pq_style_loss(cls, masks, tgt, torch.tensor([[1, 3]]), matched)
    assert torch.isfinite(out['cls']) and torch.isfinite(out['mask'])
