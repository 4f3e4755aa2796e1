"""Hungarian matching with kMaX's product cost and fixed stuff-query assignment."""
import itertools

import pytest
import torch
from mmdet.models.task_modules.assigners import HungarianAssigner
from mmdet.registry import TASK_UTILS as DET_TASK_UTILS
from mmengine.structures import InstanceData
from mmseg.registry import TASK_UTILS as SEG_TASK_UTILS

from clustseg.models.losses import build_query_targets, pq_style_loss
from clustseg.models.task_modules import (FixedStuffHungarianAssigner, PQProductCost,
                                          fixed_stuff_assignment, fixed_stuff_gt_inds,
                                          pq_similarities)


def test_pq_similarities_hand_computed():
    cls_logits = torch.zeros(2, 3)  # C = 2 + void: every class probability 1/3
    mask_logits = torch.zeros(2, 2)  # softmax over the 2 queries: 0.5 everywhere
    gt_masks = torch.tensor([[1.0, 0.0]])  # pixel 1 is void
    class_sim, mask_sim = pq_similarities(cls_logits, mask_logits, torch.tensor([1]), gt_masks)
    assert torch.allclose(class_sim, torch.full((2, 1), 1.0 / 3.0))
    # p on non-void pixels = [.5]; <p, g> / ((|p| + |g|) / 2 + eps) = .5 / .75
    assert torch.allclose(mask_sim, torch.full((2, 1), 0.5 / (0.75 + 1e-5)))
    cost = PQProductCost()(InstanceData(scores=cls_logits, masks=mask_logits),
                           InstanceData(labels=torch.tensor([1]), masks=gt_masks))
    assert torch.allclose(cost, -(1.0 / 3.0) * 0.5 / (0.75 + 1e-5) * torch.ones(2, 1))
    # without void masking pixel 1 counts: |p| = 1, <p, g> = .5
    _, ms = pq_similarities(cls_logits, mask_logits, torch.tensor([1]), gt_masks,
                            mask_void_masking=False)
    assert torch.allclose(ms, torch.full((2, 1), 0.5 / (1.0 + 1e-5)))
    # sigmoid class head (no void column)
    cs, _ = pq_similarities(torch.zeros(2, 2), mask_logits, torch.tensor([1]), gt_masks,
                            class_act='sigmoid')
    assert torch.allclose(cs, torch.full((2, 1), 0.5))


def _random_problem(seed, k=4, m=3, c=3, size=6):
    gen = torch.Generator().manual_seed(seed)
    seg = torch.randint(0, m, (size, size), generator=gen)
    gt_masks = torch.stack([seg == i for i in range(m)]).float()
    gt_labels = torch.randint(0, c, (m, ), generator=gen)
    pred = InstanceData(scores=torch.randn(k, c + 1, generator=gen) * 2,
                        masks=torch.randn(k, size, size, generator=gen) * 2)
    return pred, InstanceData(labels=gt_labels, masks=gt_masks)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_product_cost_hungarian_is_brute_force_optimum(seed):
    pred, gt = _random_problem(seed)
    # the tests run under default_scope='mmseg', whose registry has its own HungarianAssigner
    assigner = DET_TASK_UTILS.build(
        dict(type='mmdet.HungarianAssigner', match_costs=[dict(type='PQProductCost')]))
    result = assigner.assign(pred, gt)
    class_sim, mask_sim = pq_similarities(pred.scores, pred.masks, gt.labels, gt.masks)
    score = class_sim * mask_sim  # K x M, maximised
    best, best_q = -1.0, None
    for qs in itertools.permutations(range(4), 3):  # GT m -> query qs[m]
        s = sum(score[q, mi].item() for mi, q in enumerate(qs))
        if s > best:
            best, best_q = s, qs
    expected = torch.zeros(4, dtype=torch.long)
    for mi, q in enumerate(best_q):
        expected[q] = mi + 1
    assert torch.equal(result.gt_inds, expected)
    assert torch.equal(result.labels[expected > 0], gt.labels[expected[expected > 0] - 1])


def test_cost_builds_under_mmseg_scope_too():
    assert isinstance(SEG_TASK_UTILS.build(dict(type='PQProductCost')), PQProductCost)
    with pytest.raises(ValueError, match='class_act'):
        pq_similarities(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(1, dtype=torch.long),
                        torch.ones(1, 4), class_act='relu')


def _cost_table():
    # queries: 0, 1, 2 things; 3 = stuff class 80; 4 = stuff class 81
    # GT: 0 thing (3), 1 stuff (81), 2 thing (7), 3 stuff (82, no query)
    cost = torch.tensor([[-0.10, -0.95, -0.80, -0.90],
                         [-0.90, -0.20, -0.85, -0.10],
                         [-0.50, -0.10, -0.10, -0.10],
                         [-0.99, -0.99, -0.99, -0.99],
                         [-0.99, -0.05, -0.99, -0.99]])
    return cost, torch.tensor([3, 81, 7, 82]), torch.tensor([-1, -1, -1, 80, 81])


def test_fixed_stuff_assignment_hand_case():
    cost, labels, qsc = _cost_table()
    r = fixed_stuff_assignment(cost, labels, qsc, num_things_classes=80)
    # stuff GT 1 goes to its class query 4 although query 0 is cheaper; class 80 absent ->
    # query 3 unmatched; class 82 has no query -> GT 3 unmatched; things: the Hungarian
    # optimum over {q0, q1, q2} x {gt0, gt2} is q1-gt0 + q0-gt2 = -1.7
    assert r.gt_inds.tolist() == [3, 1, 0, 0, 2]
    assert r.labels.tolist() == [7, 3, -1, -1, 81]
    assert r.num_gts == 4
    # without num_things_classes, GT 3 (class 82, no stuff query) is treated as a thing:
    # the thing optimum becomes q0-gt3 + q1-gt2 + q2-gt0 = -2.25
    r2 = fixed_stuff_assignment(cost, labels, qsc)
    assert r2.gt_inds.tolist() == [4, 3, 1, 0, 2]


def test_fixed_stuff_assignment_duplicates_and_errors():
    cost, labels, qsc = _cost_table()
    cost = torch.cat([cost, torch.tensor([[0.0], [0.0], [0.0], [0.0], [-0.5]])], dim=1)
    labels = torch.cat([labels, torch.tensor([81])])
    r = fixed_stuff_assignment(cost, labels, qsc, num_things_classes=80)
    assert r.gt_inds[4].item() == 5  # the second class-81 segment has the lower cost
    with pytest.raises(ValueError, match='more than once'):
        fixed_stuff_assignment(cost, labels, torch.tensor([-1, -1, -1, 81, 81]))
    with pytest.raises(ValueError):
        fixed_stuff_assignment(cost, labels[:3], qsc)
    # no thing queries at all: only stuff is matched
    r = fixed_stuff_assignment(cost[3:], labels, qsc[3:], num_things_classes=80)
    assert r.gt_inds.tolist() == [0, 5]


def _panoptic_image():
    """4 x 4: thing A (class 0) top-left, thing B (class 1) top-right, stuff (class 2) bottom."""
    a = torch.zeros(4, 4)
    a[:2, :2] = 1
    b = torch.zeros(4, 4)
    b[:2, 2:] = 1
    s = torch.zeros(4, 4)
    s[2:] = 1
    gt = InstanceData(labels=torch.tensor([0, 1, 2]), masks=torch.stack([a, b, s]))
    # queries: q0 -> B, q1 -> A, q2 = stuff query of class 2, q3 = thing query that also
    # paints the bottom and is more confident about class 2 than q2
    masks = torch.stack([b, a, s, s]) * 10 - 5
    scores = torch.full((4, 4), -4.0)  # C = 3 + void
    scores[0, 1] = scores[1, 0] = 4.0
    scores[2, 2] = 1.0
    scores[3, 2] = 4.0
    return InstanceData(scores=scores, masks=masks), gt


def test_fixed_stuff_assigner_with_product_cost():
    pred, gt = _panoptic_image()
    cfg = dict(type='FixedStuffHungarianAssigner', num_things_classes=2,
               match_costs=[dict(type='PQProductCost')])
    assigner = DET_TASK_UTILS.build(cfg)
    assert isinstance(assigner, FixedStuffHungarianAssigner)
    plain = HungarianAssigner(match_costs=[dict(type='PQProductCost')]).assign(pred, gt)
    assert plain.gt_inds.tolist() == [2, 1, 0, 3]  # free matching gives stuff to q3
    qsc = torch.tensor([-1, -1, 2, -1])
    fixed = assigner.assign(pred, gt, query_stuff_classes=qsc)
    assert fixed.gt_inds.tolist() == [2, 1, 3, 0]
    assert fixed.labels.tolist() == [1, 0, 2, -1]
    # the stuff classes may also travel in pred_instances
    pred2 = pred.clone()
    pred2.stuff_classes = qsc
    assert assigner.assign(pred2, gt).gt_inds.tolist() == [2, 1, 3, 0]
    # without stuff queries it is mmdet's HungarianAssigner
    assert torch.equal(assigner.assign(pred, gt).gt_inds, plain.gt_inds)
    # no GT: everything unmatched
    empty = InstanceData(labels=torch.zeros(0, dtype=torch.long), masks=torch.zeros(0, 4, 4))
    assert assigner.assign(pred, empty, query_stuff_classes=qsc).gt_inds.tolist() == [0] * 4


def test_matching_feeds_the_pq_loss():
    pred, gt = _panoptic_image()
    assigner = DET_TASK_UTILS.build(
        dict(type='FixedStuffHungarianAssigner', num_things_classes=2,
             match_costs=[dict(type='PQProductCost')]))
    result = assigner.assign(pred, gt, query_stuff_classes=torch.tensor([-1, -1, 2, -1]))
    t = build_query_targets([result], [gt.masks], [gt.labels], num_classes=3)
    # a prediction that agrees with the assignment scores (near) zero
    masks = (t.masks * 40 - 20)
    masks[0, 3] = -20
    scores = torch.full((1, 4, 4), -20.0)
    for k, y in enumerate(t.labels[0].tolist()):
        scores[0, k, y] = 20.0
    out = pq_style_loss(scores, masks, t.masks, t.labels, t.matched)
    assert out['mask'].item() < 1e-5 and out['cls'].item() < 1e-5
    # and the assigner's own prediction does not
    out = pq_style_loss(pred.scores[None], pred.masks[None], t.masks, t.labels, t.matched)
    assert out['mask'].item() > 1e-3


def test_several_predictions_matched_at_once_as_each_alone():
    """pq_similarities and FixedStuffHungarianAssigner.assign_many over S predictions of one
    image = each prediction on its own (costs and gt_inds), and fixed_stuff_gt_inds keeps the
    stuff-by-class rule per matrix."""
    gen = torch.Generator().manual_seed(3)
    s, k, m, c = 4, 6, 4, 5  # queries 0-3 things, 4 / 5 stuff classes 3 / 4; classes < 3 things
    scores = torch.randn(s, k, c + 1, generator=gen) * 2
    masks = torch.randn(s, k, 5, 5, generator=gen) * 2
    m = 5  # GT 1 and 4 share stuff class 3: the lower cost of its query wins, per matrix
    seg = torch.randint(0, m, (5, 5), generator=gen)
    gt = InstanceData(labels=torch.tensor([0, 3, 1, 4, 3]),
                      masks=torch.stack([seg == i for i in range(m)]).float())
    qsc = torch.tensor([-1, -1, -1, -1, 3, 4])
    cs, ms = pq_similarities(scores, masks, gt.labels, gt.masks)
    assert cs.shape == ms.shape == (s, k, m)
    assigner = FixedStuffHungarianAssigner(match_costs=[dict(type='PQProductCost')],
                                           num_things_classes=3)
    many = assigner.assign_many(scores, masks, gt, qsc)
    for i in range(s):
        c1, m1 = pq_similarities(scores[i], masks[i], gt.labels, gt.masks)
        torch.testing.assert_close(cs[i], c1)
        torch.testing.assert_close(ms[i], m1)
        one = assigner.assign(InstanceData(scores=scores[i], masks=masks[i]), gt,
                              query_stuff_classes=qsc)
        assert torch.equal(many[i], one.gt_inds)
    assert many[:, 5].eq(4).all()  # stuff by class
    assert set(many[:, 4].tolist()) == {2, 5}  # the class-3 query picks per matrix
    assert torch.equal(fixed_stuff_gt_inds(torch.zeros(2, k, 0), torch.zeros(0).long(), qsc),
                       torch.zeros(2, k, dtype=torch.long))
    with pytest.raises(ValueError, match='same leading sizes'):
        pq_similarities(scores, masks[:, :3], gt.labels, gt.masks)
