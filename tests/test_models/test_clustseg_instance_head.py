"""ClustSegInstanceHead (paper A.2) on real COCO samples: sigmoid class FFN with BCE, weights
wired to their terms, the class FFN's top class handed to mmdet's fusion head, bad arguments."""
import copy

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from clustseg.models.losses import sigmoid_class_loss
from clustseg.registry import DATASETS, MODELS
from stacking_checks import assert_stacking_changes_nothing

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CFG = ROOT / 'configs' / 'instance' / 'clustseg_compact_embedded.py'


def _cfg():
    cfg = Config.fromfile(str(CFG))
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (192, 192)
        if t['type'] == 'RandomFlip':
            t['prob'] = 0.0
    return cfg


def _build(model_cfg, data_cfg):
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        model.init_weights()
        ds = DATASETS.build(data_cfg)
        batch = pseudo_collate([ds[0], ds[1]])
    return model, batch


def _loss(model, batch, seed=0):
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        return model(**data, mode='loss')


@pytest.fixture(scope='module')
def setup():
    cfg = _cfg()
    return _build(cfg.model, cfg.train_dataloader.dataset)


def _head_output(model, batch):
    """The head's training forward and its GT (the random draws seeded)."""
    head = model.panoptic_head
    model.train()
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        x = model.extract_feat(data['inputs'])
        torch.manual_seed(0)
        out = head(x, data['data_samples'])
        gts = head.preprocess_gt(data['data_samples'])
    return head, out, gts


def _grid_points(logits, num_points, *args):
    """A deterministic stand-in for the uncertainty sampling: the same points for every mask
    (so that the losses do not depend on how the masks are grouped for the draw)."""
    side = int(num_points ** 0.5)
    g = (torch.arange(side, dtype=torch.float32) + 0.37) / side
    pts = torch.stack(torch.meshgrid(g, g.flip(0), indexing='xy'), dim=-1).view(-1, 2)
    return pts[None].expand(logits.shape[0], -1, -1)


def test_class_ffn_replaces_the_softmax_classifier_and_every_parameter_trains(setup):
    model, batch = setup
    head = model.panoptic_head
    assert not hasattr(head, 'cls_embed')
    model.train()
    losses = _loss(model, batch)
    decoder = head.core.decoder
    keys = ('loss_cls', 'loss_mask', 'loss_dice')
    # the output's terms unprefixed, the others summed per decoder level
    levels = sorted(set(decoder.layer_levels))
    assert set(losses) == {f'lv{v}.{k}' for v in levels for k in keys} | set(keys)
    model.zero_grad()
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert head.cls_ffn[-1].weight.grad.abs().sum() > 0


def test_losses_are_mask2formers_per_e_step(setup, monkeypatch):
    """Each E-step's class BCE over the matched labels and point-sampled mask BCE / dice over
    its matched (query, GT) pairs, each normalised by its own E-step's factors (mmdet's
    Mask2Former normalisation), read here with mmcv's point_sample at the same points, and
    summed per decoder level."""
    from mmcv.ops import point_sample

    import clustseg.models.heads.clustseg_instance_head as ih
    from clustseg.models.losses import mask_bce_dice_terms
    model, batch = setup
    monkeypatch.setattr(ih, 'uncertain_point_coords', _grid_points)
    head, out, gts = _head_output(model, batch)
    seen = []
    real = head._match_image

    def spy(*args):
        seen.append(real(*args))
        return seen[-1]

    monkeypatch.setattr(head, '_match_image', spy)
    torch.manual_seed(1)
    losses = head.loss_by_feat(out, gts, None)
    gt_inds = torch.stack(seen, dim=1)  # S x B x K
    expected = {}
    for (prefix, steps) in head.step_groups(out.states, [False] * len(out.states)):
        for i in steps:
            labels = torch.full(gt_inds[i].shape, head.num_classes, dtype=torch.long)
            preds, targets = [], []
            for b, g in enumerate(gts):
                pos = gt_inds[i, b] > 0
                labels[b, pos] = g.labels[gt_inds[i, b][pos] - 1].long()
                preds.append(out.mask_preds[i][b][pos])
                targets.append(g.masks[gt_inds[i, b][pos] - 1].float())
            preds, targets = torch.cat(preds), torch.cat(targets)
            coords = _grid_points(preds, head.num_points)
            bce, dice = mask_bce_dice_terms(
                point_sample(preds.unsqueeze(1), coords).squeeze(1),
                point_sample(targets.unsqueeze(1), coords).squeeze(1), head.dice_eps)
            avg = max(len(preds), 1)
            for k, v in (('loss_cls', 2.0 * sigmoid_class_loss(out.cls_scores[i], labels)),
                         ('loss_mask', 5.0 * bce.sum() / avg),
                         ('loss_dice', 2.0 * dice.sum() / avg)):
                expected[prefix + k] = expected.get(prefix + k, 0.0) + v
    assert set(losses) == set(expected)
    # matched queries carry their GT class: every GT is matched at the output (K > M)
    assert (gt_inds[-1] > 0).sum() == sum(len(g.labels) for g in gts)
    for k in expected:
        torch.testing.assert_close(losses[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)


@pytest.mark.parametrize('levels', [None, (0, 1, 2, 0, 1, 2)])
def test_stacked_e_steps_equal_one_e_step_at_a_time(setup, monkeypatch, levels):
    """A decoder level's E-steps evaluated stacked along the batch (a GPU's STACK_E_STEPS)
    give the same keys, values and gradients as one E-step at a time (the CPU's); also when
    a level's E-steps are not consecutive (interleaved layer levels)."""
    import clustseg.models.heads.clustseg_instance_head as ih
    if levels is None:
        model, batch = setup
    else:
        cfg = _cfg()
        cfg.model.panoptic_head.decoder.layer_levels = levels
        model, batch = _build(cfg.model, cfg.train_dataloader.dataset)
    monkeypatch.setattr(ih, 'uncertain_point_coords', _grid_points)
    head, out, gts = _head_output(model, batch)
    groups = head.step_groups(out.states, [False] * len(out.states))
    assert max(len(g) for _, g in groups) > 1
    if levels is not None:  # a group with a gap
        assert any(g != list(range(g[0], g[-1] + 1)) for _, g in groups)
    params = [p for p in head.parameters() if p.requires_grad]
    assert_stacking_changes_nothing(monkeypatch, lambda: head.loss_by_feat(out, gts, None),
                                    params)


def test_select_steps_views_consecutive_steps_and_gathers_the_others():
    from clustseg.models.heads.clustseg_head import select_steps
    x = torch.arange(12.0).view(6, 2)
    v = select_steps(x, [2, 3, 4])
    assert torch.equal(v, x[2:5]) and v.data_ptr() == x[2].data_ptr()  # a view
    assert torch.equal(select_steps(x, [0, 3, 5]), x[[0, 3, 5]])


@pytest.mark.parametrize('empty', ['one', 'all'])
def test_images_without_instances_give_finite_losses(setup, empty):
    """An image (or every image) without a GT instance: every query is no object there; no
    mask term for it (zero when no image has one), and backward runs."""
    from mmengine.structures import InstanceData
    model, batch = setup
    head, out, gts = _head_output(model, batch)
    none = [InstanceData(labels=g.labels[:0], masks=g.masks[:0]) for g in gts]
    gts = none if empty == 'all' else [none[0], gts[1]]
    losses = head.loss_by_feat(out, gts, None)
    assert set(losses) == {k for k in losses if k.split('.')[-1] in
                           ('loss_cls', 'loss_mask', 'loss_dice')} and 'loss_cls' in losses
    assert all(torch.isfinite(v) for v in losses.values())
    if empty == 'all':
        assert all(float(v) == 0 for k, v in losses.items() if 'cls' not in k)
    else:
        assert float(losses['loss_mask']) > 0
    sum(losses.values()).backward()


def test_step_factors_are_each_e_steps_own(setup):
    """Per E-step: the matched queries (mask terms, at least 1) and matched + 0.1 x the
    others (class BCE, at least 1)."""
    head = setup[0].panoptic_head
    gt_index = torch.full((3, 2, 4), -1)
    gt_index[0, 0, :2] = torch.tensor([0, 1])
    gt_index[0, 1, 3] = 0
    gt_index[2, 1, 1] = 2
    masks, cls = head._step_factors(gt_index, 'cpu')
    assert masks.tolist() == [3.0, 1.0, 1.0]
    torch.testing.assert_close(cls, torch.tensor([3 + 0.5, 1.0, 1 + 0.7]))  # at least 1


@pytest.mark.parametrize('chunk', [1, 2**30])
def test_matching_every_e_step_of_an_image_equals_the_assigner_per_e_step(setup, chunk,
                                                                          monkeypatch):
    """_match_image: the E-steps of an image matched on one set of uniform points (each
    E-step's cost on num_points uniform points, as Mask2Former's), their costs computed one
    E-step at a time (the CPU's MATCH_CHUNK_ELEMENTS) or all together (a GPU's) and the S
    assignments made after one host transfer, equal to the assigner's assign per E-step on
    the same points."""
    from mmcv.ops import point_sample
    from mmengine.structures import InstanceData

    import clustseg.models.heads.clustseg_head as base
    monkeypatch.setitem(base.MATCH_CHUNK_ELEMENTS, 'cpu', chunk)
    model, batch = setup
    head, out, gts = _head_output(model, batch)
    qc = out.core.query_classes
    s, k = len(out.cls_scores), out.cls_scores[0].shape[1]
    assert s > 1
    for b, gt in enumerate(gts):
        cls = [c[b].detach() for c in out.cls_scores]
        masks = [m[b].detach() for m in out.mask_preds]
        torch.manual_seed(b)
        got = head._match_image(cls, masks, gt, qc)
        assert got.shape == (s, k) and got.device.type == 'cpu'
        torch.manual_seed(b)
        pts = torch.rand((1, head.num_points, 2))
        gt_pts = point_sample(gt.masks.unsqueeze(1).float(),
                              pts.repeat(len(gt.labels), 1, 1)).squeeze(1)
        for i in range(s):
            pred = point_sample(masks[i].unsqueeze(1), pts.repeat(k, 1, 1)).squeeze(1)
            ref = head.assigner.assign(
                pred_instances=InstanceData(scores=cls[i], masks=pred),
                gt_instances=InstanceData(labels=gt.labels, masks=gt_pts),
                img_meta=dict(query_stuff_classes=qc))
            assert torch.equal(got[i], ref.gt_inds.cpu()), (b, i)
        assert (got > 0).sum(dim=1).eq(len(gt.labels)).all()  # every GT matched, K > M


def test_loss_weights_multiply_their_terms():
    cfg = _cfg()
    base, batch = _build(cfg.model, cfg.train_dataloader.dataset)
    m2 = copy.deepcopy(cfg.model)
    m2.panoptic_head.class_loss_weight = 4.0
    m2.panoptic_head.loss_dice.loss_weight = 6.0  # the mmdet config's weight takes effect
    model2, _ = _build(m2, cfg.train_dataloader.dataset)
    base.train()
    model2.train()
    a, b = _loss(base, batch), _loss(model2, batch)
    torch.testing.assert_close(b['loss_cls'], 2 * a['loss_cls'])
    torch.testing.assert_close(b['loss_dice'], 3 * a['loss_dice'])
    torch.testing.assert_close(b['loss_mask'], a['loss_mask'])


def test_prediction_hands_every_class_sigmoid_to_the_fusion_head(setup):
    model, batch = setup
    head = model.panoptic_head
    model.eval()
    with torch.no_grad(), DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, False)
        x = model.extract_feat(data['inputs'])
        cls_logp, masks = head.predict(x, data['data_samples'])
        all_cls = head(x, data['data_samples']).cls_scores
        results = model.predict(data['inputs'], data['data_samples'])
    # what ClassScoreFusionHead reads: each class's own probability, no no-object column
    torch.testing.assert_close(cls_logp.exp(), all_cls[-1].sigmoid(), atol=1e-6, rtol=1e-5)
    assert masks.shape[-2:] == tuple(data['data_samples'][0].metainfo['batch_input_shape'])
    inst = results[0].pred_instances
    assert len(inst) == head.test_cfg['max_per_image']
    assert set(inst.keys()) >= {'masks', 'bboxes', 'scores', 'labels'}
    assert int(inst.labels.max()) < head.num_classes


@pytest.mark.parametrize('change, err, match', [
    (dict(loss_cls=dict(type='CrossEntropyLoss')), KeyError, 'loss_cls'),
    (dict(num_stuff_classes=53), ValueError, 'num_stuff_classes'),
    (dict(class_loss_weight=0.0), ValueError, 'class_loss_weight'),
    # the instance loss has no map-only or point-supervised E-steps
    (dict(deep_supervision=dict(type='InnerEStepMaps')), ValueError,
     r'deep_supervision=InnerEStepMaps: ClustSegInstanceHead has no loss'),
    (dict(deep_supervision=dict(type='InnerEStepPoints')), ValueError,
     r'deep_supervision=InnerEStepPoints: ClustSegInstanceHead has no loss'),
])
def test_bad_head_arguments_are_errors(change, err, match):
    cfg = _cfg()
    cfg.model.panoptic_head.update(change)
    with pytest.raises(err, match=match), DefaultScope.overwrite_default_scope('mmdet'):
        MODELS.build(cfg.model)
