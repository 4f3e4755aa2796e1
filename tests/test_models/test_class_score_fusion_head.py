"""ClassScoreFusionHead: mmdet's panoptic fusion of each query's best class, and mmdet's
instance protocol over every (query, class) pair of independent class probabilities."""

import pytest
import torch
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead

from clustseg.models.fusion_heads import ClassScoreFusionHead

THINGS, STUFF = 2, 2  # classes 0, 1 things; 2, 3 stuff


def _heads(**test_cfg):
    cfg = dict(object_mask_thr=0.8, iou_thr=0.8, filter_low_score=False, max_per_image=4,
               **test_cfg)
    return (ClassScoreFusionHead(THINGS, STUFF, test_cfg=cfg),
            MaskFormerFusionHead(THINGS, STUFF, test_cfg=cfg))


def _masks(k=3, h=6, w=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, h, w, generator=g) * 4


def test_panoptic_is_mmdets_fusion_of_each_querys_best_class():
    ours, mmdet = _heads()
    # query 0: two thing classes (best 0.95); query 1: stuff class 3 at 0.9; query 2: 0.6
    scores = torch.tensor([[0.95, 0.9, 0.0, 0.0], [0.0, 0.0, 0.0, 0.9], [0.6, 0.1, 0.0, 0.0]])
    mask_pred = _masks()
    got = ours.panoptic_postprocess(scores.log(), mask_pred).sem_seg
    best, label = scores.max(-1)
    dist = torch.zeros(3, THINGS + STUFF + 1)
    dist[torch.arange(3), label] = best
    dist[:, -1] = 1 - best
    want = mmdet.panoptic_postprocess(dist.clamp(min=1e-8).log(), mask_pred).sem_seg
    assert torch.equal(got, want)
    assert len(got.unique()) > 1


def test_instances_are_the_top_query_class_pairs():
    ours, _ = _heads()
    log_scores = torch.tensor([[0.9, 0.8, 0.0, 0.0],  # one query, two confident thing classes
                               [0.0, 0.0, 0.99, 0.0],  # a stuff query: never an instance
                               [0.3, 0.0, 0.0, 0.0]]).log()  # 0 -> -inf, as the heads give
    mask_pred = _masks()
    res = ours.instance_postprocess(log_scores, mask_pred)
    # max_per_image = 4 pairs: (0, 0), (0, 1), (1, 2) dropped as stuff, (2, 0)
    assert len(res) == 3 and sorted(res.labels.tolist()) == [0, 0, 1]
    binary = mask_pred > 0
    mean_prob = (mask_pred.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1)
                                                                    + 1e-6)
    want = sorted([0.9 * mean_prob[0].item(), 0.8 * mean_prob[0].item(),
                   0.3 * mean_prob[2].item()])
    assert sorted(res.scores.tolist()) == pytest.approx(want, rel=1e-5)
    assert res.bboxes.shape == (3, 4)
    # query 0 gives a detection under each of its two classes, with its own mask
    first = res.scores.argmax()
    assert int(res.labels[first]) == 0 and torch.equal(res.masks[first], binary[0])
    assert torch.equal(res.masks[res.labels == 1][0], binary[0])
    with pytest.raises(ValueError, match='class scores must be K x 4'):
        ours.instance_postprocess(torch.zeros(3, 5), mask_pred)


@pytest.mark.parametrize('block', [8192, 5])  # one block, and several with a partial last one
def test_the_semantic_map_is_mask2formers_dense_semantic_inference(block, monkeypatch):
    from clustseg.models.fusion_heads import class_score_fusion_head
    monkeypatch.setattr(class_score_fusion_head, 'SEMANTIC_BLOCK', block)
    ours, _ = _heads()
    dense, _ = _heads()
    dense.semantic_map = True
    scores = torch.tensor([[0.95, 0.2, 0.0, 0.0], [0.0, 0.0, 0.0, 0.9], [0.0, 0.0, 0.3, 0.0]])
    mask_pred = _masks()
    plain = ours.panoptic_postprocess(scores.log(), mask_pred)
    out = dense.panoptic_postprocess(scores.log(), mask_pred)
    assert 'semantic' not in plain and torch.equal(out.sem_seg, plain.sem_seg)
    want = (scores.t()[:, :, None, None] * mask_pred.sigmoid()[None]).sum(1).argmax(0)
    assert torch.equal(out.semantic[0], want)
    assert set(want.unique().tolist()) > {0}  # more than one class
