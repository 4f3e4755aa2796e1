"""ClustSegPanopticHead (Eq. 12) on real COCO panoptic samples: loss terms per E-step, weights
wired to their terms, prediction hand-off to mmdet's fusion head, config errors."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from clustseg.models.heads.clustseg_panoptic_head import ClustSegPanopticHead
from clustseg.registry import DATASETS, MODELS
from stacking_checks import assert_stacking_changes_nothing

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
CFG = ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'
STEP_KEYS = ('loss_th_ce', 'loss_th_dice', 'loss_st_ce', 'loss_st_dice', 'loss_pq_cls',
             'loss_pq_mask', 'loss_mask_id', 'loss_e_step_mask_id')
ONCE_KEYS = ('loss_insdis', 'loss_sem', 'loss_thing_cls')


def _cfg():
    cfg = Config.fromfile(str(CFG))
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (192, 192)
        if t['type'] == 'RandomFlip':
            t['prob'] = 0.0
    return cfg


def _inner_points(cfg, num_points):
    """``cfg`` with its inner E-steps supervised at ``num_points`` points (None: every E-step
    in full)."""
    cfg.model.panoptic_head.deep_supervision = dict(type='EveryEStep') if num_points is None \
        else dict(type='InnerEStepPoints', num_points=num_points)
    return cfg


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        batch = pseudo_collate([ds[0], ds[1]])
    return model, batch


@pytest.fixture(scope='module')
def setup():
    return _build(_cfg())


def _head_output(model, batch):
    """(head output, the batch's preprocessed GT) of a training-mode forward."""
    head = model.panoptic_head
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        x = model.extract_feat(data['inputs'])
        return head(x, data['data_samples']), head.preprocess_gt(data['data_samples'])


def _loss(model, batch):
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        return model(**data, mode='loss')


def test_every_e_step_gets_the_matched_terms_and_the_step_gets_the_auxiliary_ones(setup):
    model, batch = setup
    model.train()
    losses = _loss(model, batch)
    dec = model.panoptic_head.core.decoder
    n_layers, t = len(dec.layer_levels), dec.num_iters  # every E-step supervised
    assert t == 3
    # each decoder level's E-steps summed under one key, the output's E-step alone
    prefixes = {f'lv{level}.' for level in dec.layer_levels}
    assert len(prefixes) == 3
    expected = {p + k for p in prefixes for k in STEP_KEYS}
    expected |= set(STEP_KEYS) | set(ONCE_KEYS)
    assert set(losses) == expected
    for k, v in losses.items():
        assert v.dim() == 0 and torch.isfinite(v), k
    # the thing and stuff terms see matched pairs of the real images (not an all-void batch)
    assert float(losses['loss_th_dice']) > 0 and float(losses['loss_st_dice']) > 0
    total = sum(losses.values())
    model.zero_grad()
    total.backward()
    head = model.panoptic_head
    for name in ('thing_cls_ffn', 'sem_head', 'cls_embed', 'mask_predictor'):
        grads = [p.grad for p in getattr(head, name).parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), name


def test_loss_weights_multiply_their_terms():
    """Doubling λ_th doubles exactly the thing terms; λ_aux scales the auxiliary ones."""
    cfg = _cfg()
    model, batch = _build(cfg)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    base = _loss(model, batch)
    head = model.panoptic_head
    head.loss_weights = dict(head.loss_weights, thing=10.0, aux=2.0)
    model.load_state_dict(state)  # same memory bank / RNG step -> same draws
    scaled = _loss(model, batch)
    for k in base:
        name = k.split('.')[-1]
        if name.startswith('loss_th_'):
            factor = 2.0
        elif name in ('loss_pq_cls', 'loss_pq_mask', 'loss_mask_id', 'loss_insdis', 'loss_sem',
                      'loss_e_step_mask_id'):
            factor = 2.0
        else:
            factor = 1.0
        torch.testing.assert_close(scaled[k], base[k] * factor, msg=k)


def test_prediction_is_the_softmax_over_clusters_and_per_class_scores(setup):
    model, batch = setup
    model.eval()
    head = model.panoptic_head
    captured = {}
    real_predict = type(head).predict

    def spy(self, x, samples):
        out = real_predict(self, x, samples)
        captured['out'] = out
        return out

    with torch.no_grad(), DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, False)
        feats = model.extract_feat(data['inputs'])
        cls_logp, mask_logits = spy(head, feats, data['data_samples'])
        # the same forward, raw: final mask logits upsampled, softmax over the K clusters
        out = head(feats, data['data_samples'])
        masks_raw = out.mask_preds
        h, w = data['data_samples'][0].metainfo['batch_input_shape']
        up = F.interpolate(masks_raw[-1], size=(h, w), mode='bilinear', align_corners=False)
        p = up.softmax(dim=1).clamp(1e-6, 1 - 1e-6)
    torch.testing.assert_close(mask_logits.sigmoid(), p, atol=1e-5, rtol=1e-4)
    scores = cls_logp.exp()  # what ClassScoreFusionHead reads: one probability per class
    assert cls_logp.shape[-1] == head.num_classes
    qc = out.core.query_classes
    nth = head.num_things_classes
    thing, stuff = scores[:, qc < 0], scores[:, qc >= 0]
    # a thing query: every thing class, by the thing FFN's sigmoid; no stuff class
    th_logits = head.thing_cls_ffn(out.centers[-1][:, qc < 0])
    torch.testing.assert_close(thing[..., :nth], th_logits.sigmoid(), atol=1e-6, rtol=1e-5)
    assert (thing[..., nth:] == 0).all()
    # a stuff query: its own class only, by the class head's softmax
    own_class = qc[qc >= 0][None, :, None].expand(stuff.shape[0], -1, 1)
    own = stuff.gather(2, own_class)[..., 0]
    want = out.cls_scores[-1][:, qc >= 0].softmax(-1).gather(2, own_class)[..., 0]
    torch.testing.assert_close(own, want, atol=1e-6, rtol=1e-5)
    assert int((stuff > 0).sum()) == stuff.shape[0] * stuff.shape[1]
    model.train()


@pytest.mark.parametrize('change,match', [
    (dict(loss_weights=dict(thngs=1.0)), r"loss_weights has unknown key\(s\) \['thngs'\]"),
    (dict(loss_cls=dict(type='CrossEntropyLoss')), 'loss_cls'),
    (dict(loss_weights=dict(e_step=0.0), decoder=dict(variant='kmeans')),
     'HardArgmax E-step passes no gradient'),
])
def test_bad_head_arguments_are_errors(change, match):
    cfg = Config.fromfile(str(CFG))
    for k, v in change.items():  # merged into the config's dicts, as a user's config would
        if isinstance(v, dict) and isinstance(cfg.model.panoptic_head.get(k), dict):
            cfg.model.panoptic_head[k].update(v)
        else:
            cfg.model.panoptic_head[k] = v
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises((KeyError, ValueError, TypeError),
                                                                      match=match):
        MODELS.build(cfg.model)


def test_a_panoptic_threshold_without_effect_is_an_error():
    """Below 0.5 the panoptic score threshold changed nothing (a query with score s <= 0.5
    loses to its no-object 1 - s in mmdet's fusion)."""
    cfg = Config.fromfile(str(CFG))
    cfg.model.test_cfg.object_mask_thr = 0.3
    match = r'object_mask_thr=0\.3 must be in \[0\.5, 1\]'
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(ValueError, match=match):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('num_points,inner', [(0, None), (64, None), (64, 256)])
def test_recomputed_losses_give_the_same_values_and_gradients(num_points, inner):
    """train_cfg.recompute_losses (activation checkpointing of each E-step's dense terms)
    changes memory, not the result (with point-sampled mask terms too: the recomputation
    draws the same points; and with point-supervised inner E-steps)."""
    cfg = _inner_points(_cfg(), inner)
    cfg.model.train_cfg.mask_num_points = num_points
    model, batch = _build(cfg)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    results = []
    for recompute in (False, True):
        model.load_state_dict(state)
        model.panoptic_head.train_cfg['recompute_losses'] = recompute
        model.zero_grad()
        losses = _loss(model, batch)
        sum(losses.values()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((losses, grads))
    (la, ga), (lb, gb) = results
    for k in la:
        torch.testing.assert_close(la[k], lb[k], msg=k)
    assert set(ga) == set(gb)
    for n in ga:
        torch.testing.assert_close(ga[n], gb[n], rtol=1e-4, atol=1e-6, msg=n)


def _row_case(num_classes):
    """Random predictions of 2 images x 5 queries (3 thing, 2 stuff) and a padded GT of 3
    segments, one of them (image 1, segment 2) left unmatched: its pixels are void."""
    torch.manual_seed(0)
    masks = torch.randn(2, 5, 12, 10, requires_grad=True)
    cls = torch.randn(2, 5, num_classes + 1, requires_grad=True)
    # an E-step map at a 6 x 5 level: the softmax over K of the E-step's logits
    e_logits = torch.randn(2, 5, 30, requires_grad=True)
    gt = (torch.rand(2, 3, 12, 10) > 0.6).float()  # B x M x H4 x W4
    labels = torch.tensor([[0, 1, 4], [2, 3, 0]])
    thing = torch.tensor([True, True, True, False, False])
    gt_index = torch.tensor([[0, -1, 1, 2, -1], [-1, 1, -1, -1, 0]])
    return masks, cls, e_logits, gt, labels, thing, gt_index


@pytest.mark.parametrize('num_points,act,void', [(0, 'softmax', False), (0, 'sigmoid', False),
                                                  (16, 'softmax', False), (16, 'softmax', True)])
def test_step_losses_in_row_form_equal_the_per_query_terms(setup, num_points, act, void):
    """_step_losses reads one row per GT segment (its matched query's map, gt_queries):
    every term and its gradients equal those of the per-query (B x K) targets of
    gather_query_targets through the public losses, dense and point-sampled (the same points,
    drawn by _step_draws from each segment's matched query's logit, in (image, segment)
    order; with points_ignore_void, only the points some GT segment covers at input
    resolution). The E-step term reads the log of the map's probabilities in both forms (the row
    form cannot take a log-softmax over K of a row); they differ in the gradient by a
    per-pixel constant over K, which the map's softmax removes: compared at its logits."""
    from mmcv.ops import point_sample

    from clustseg.models.losses import (binary_corner_codes, gather_matched,
                                        gather_query_targets, gt_queries, mask_bce_dice_terms,
                                        mask_id_cross_entropy, matched_mask_terms, pq_style_loss,
                                        uncertain_point_coords)
    head = setup[0].panoptic_head
    masks, cls, e_logits, gt, labels, thing, gt_index = _row_case(head.num_classes)
    probs = e_logits.softmax(dim=1)
    rows = gt_queries(gt_index, gt.shape[1])
    assert rows.tolist() == [[0, 2, 3], [4, 1, -1]]
    full = (torch.rand(2, 3, 48, 40) > 0.5).to(torch.uint8)  # input-resolution GT
    e_pooled = F.interpolate(gt, size=(6, 5), mode='area')
    old = dict(head.train_cfg)
    head.train_cfg.update(mask_num_points=num_points, mask_activation=act)
    try:
        torch.manual_seed(1)
        codes = binary_corner_codes(full.flatten(0, 1))
        labelled = binary_corner_codes(full.any(dim=1)) if void else None
        lse, ratios, points = head._step_draws([masks], rows, rows, gt.flatten(2), codes,
                                               labelled, False)
        got = head._step_losses([cls], [masks], [probs], (6, 5), gt_index, rows,
                                gt.flatten(2), labels, thing, torch.tensor([[3.0, 2.0]]), lse,
                                ratios, points, e_pooled)
        if num_points:  # a group of two E-steps reads each image's own GT at its points
            rows2 = rows.repeat(2, 1)
            pts2 = head._step_draws([masks, masks.flip(1)], rows2, rows2, gt.flatten(2), codes,
                                    labelled, False)[2]
    finally:
        head.train_cfg.clear()
        head.train_cfg.update(old)
    w = head.loss_weights
    tgt = gather_query_targets(gt, labels, gt_index, head.num_classes)
    ref = {}
    if num_points == 0:
        for key, sel, avg, wt in (('th', tgt.matched & thing, 3.0, w['thing']),
                                  ('st', tgt.matched & ~thing, 2.0, w['stuff'])):
            _, ce, dice = matched_mask_terms(masks, tgt.masks, sel, activation=act)
            ref[f'loss_{key}_ce'], ref[f'loss_{key}_dice'] = (wt * ce.sum() / avg,
                                                              wt * dice.sum() / avg)
    else:
        p = masks.softmax(dim=1)
        logit = torch.log(p) - torch.log1p(-p)
        has = rows >= 0
        is_th = has & thing[rows.clamp(min=0)]
        torch.manual_seed(1)  # the reference draws once too, for every matched segment
        bb, mm = has.nonzero(as_tuple=True)
        lg = logit[bb, rows[bb, mm]]  # N x H4 x W4, the segments' queries' logits
        coords = uncertain_point_coords(lg.detach().unsqueeze(1), num_points)
        torch.testing.assert_close(coords, points[0])
        ref_gt = point_sample(full[bb, mm].float().unsqueeze(1), coords).squeeze(1)
        torch.testing.assert_close(points[1], ref_gt, rtol=0, atol=1e-5)
        gb2, mm2 = rows2.ge(0).nonzero(as_tuple=True)
        assert gb2.tolist() == bb.tolist() + (bb + 2).tolist()
        ref_gt2 = point_sample(full[gb2 % 2, mm2].float().unsqueeze(1), pts2[0]).squeeze(1)
        torch.testing.assert_close(pts2[1], ref_gt2, rtol=0, atol=1e-5)
        pred = point_sample(lg.unsqueeze(1), coords).squeeze(1)
        keep = None
        if void:  # the image's labelled pixels (any segment) at the points
            cover = point_sample(full[bb].amax(dim=1, keepdim=True).float(), coords)
            keep = cover.squeeze(1) > 0.5
            assert points[2].tolist() == keep.tolist()
            assert 0 < keep.sum() < keep.numel()
            keep2 = point_sample(full[gb2 % 2].amax(dim=1, keepdim=True).float(), pts2[0])
            assert pts2[2].tolist() == (keep2.squeeze(1) > 0.5).tolist()
        else:
            assert points[2] is None
        th_rows = is_th[bb, mm]
        # each group's terms over its own segments' points and averaging factor
        for key, sel, avg, wt in (('th', th_rows, 3.0, w['thing']),
                                  ('st', ~th_rows, 2.0, w['stuff'])):
            bce, dice = mask_bce_dice_terms(pred[sel], ref_gt[sel],
                                            keep=None if keep is None else keep[sel])
            ref[f'loss_{key}_ce'], ref[f'loss_{key}_dice'] = (wt * bce.sum() / avg,
                                                              wt * dice.sum() / avg)
    pq = pq_style_loss(cls, masks, tgt.masks, tgt.labels, tgt.matched)
    ref['loss_pq_cls'] = w['aux'] * w['pq_cls'] * pq['cls']
    ref['loss_pq_mask'] = w['aux'] * w['pq_mask'] * pq['mask']
    ref['loss_mask_id'] = w['aux'] * w['mask_id'] * mask_id_cross_entropy(masks, tgt.masks)
    log_m = probs.clamp(min=1e-30).log().view(2, 5, 6, 5)
    ref['loss_e_step_mask_id'] = w['aux'] * w['e_step'] * mask_id_cross_entropy(
        log_m, gather_matched(e_pooled, gt_index))
    assert set(got) == set(ref)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=1e-5, atol=1e-6, msg=k)
    coef = torch.rand(len(ref))
    inputs = (masks, cls, e_logits)
    g_got = torch.autograd.grad(sum(c * got[k] for c, k in zip(coef, ref)), inputs,
                                retain_graph=True)
    g_ref = torch.autograd.grad(sum(c * ref[k] for c, k in zip(coef, ref)), inputs)
    for a, b in zip(g_got, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_groups_without_matched_segments_give_zero_terms(setup):
    """No matched segment: nothing is drawn (the random state is untouched) and the thing /
    stuff terms are zeros that still reach the logits."""
    from clustseg.models.losses import gt_queries
    head = setup[0].panoptic_head
    masks, cls, _, gt, labels, thing, _ = _row_case(head.num_classes)
    none = torch.full((2, 5), -1)
    rows = gt_queries(none, 3)
    old = head.train_cfg['mask_num_points']
    head.train_cfg['mask_num_points'] = 16
    try:
        state = torch.random.get_rng_state()
        lse, ratios, points = head._step_draws([masks], rows, rows, gt.flatten(2), None, None,
                                               False)
        assert points is None
        assert torch.equal(state, torch.random.get_rng_state())
        got = head._step_losses([cls], [masks], None, (6, 5), none, rows, gt.flatten(2),
                                labels, thing, torch.ones(1, 2), lse, ratios, points)
        assert got['loss_th_ce'].item() == 0 and got['loss_st_dice'].item() == 0
        assert got['loss_th_ce'].requires_grad
    finally:
        head.train_cfg['mask_num_points'] = old


def test_full_res_targets_follow_the_matching(setup):
    """Point-sampled terms: each selected query reads its own matched GT at input resolution
    (QueryTargets.gt_index), in the row-major order of the selection."""
    from mmengine.structures import InstanceData
    head = setup[0].panoptic_head
    m0 = torch.zeros(2, 8, 8, dtype=torch.bool)
    m0[0, :2], m0[1, 4:] = True, True
    m1 = torch.zeros(1, 8, 8, dtype=torch.bool)
    m1[0, :, :3] = True
    full = head.full_res_targets([InstanceData(masks=m0, labels=torch.tensor([1, 2])),
                                   InstanceData(masks=m1, labels=torch.tensor([3]))])
    assert full.shape == (2, 2, 8, 8) and full.dtype == torch.uint8
    assert full[1, 1].sum() == 0  # image 1 has one GT: zero padding
    from clustseg.models.losses import build_query_targets
    t = build_query_targets([torch.tensor([0, 2, 1]), torch.tensor([1, 0, 0])],
                            [m0.float(), m1.float()], [torch.tensor([1, 2]), torch.tensor([3])],
                            num_classes=5)
    assert t.gt_index.tolist() == [[-1, 1, 0], [0, -1, -1]]
    sel = t.matched
    got = full[sel.nonzero(as_tuple=True)[0], t.gt_index[sel]]
    assert torch.equal(got.bool(), torch.stack([m0[1], m0[0], m1[0]]))


def test_bad_mask_num_points_is_an_error():
    cfg = Config.fromfile(str(CFG))
    cfg.model.train_cfg.mask_num_points = -1
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(
            ValueError, match='mask_num_points must be an integer >= 0'):
        MODELS.build(cfg.model)


def test_stride_targets_are_cell_centred_area_fractions(setup):
    """A segment covering input rows 2..5 (half of stride-4 cells 0 and 1) gives 0.5 / 0.5,
    the convention of the bilinear (align_corners=False) upsampling at prediction; a nearest
    resize would give 0 / 1 (each cell's top-left pixel)."""
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    head = setup[0].panoptic_head
    m = torch.zeros(2, 16, 16)
    m[0, 2:6, :] = 1  # rows 2..5: half of cells 0 and 1
    m[1, 8:16, 0:3] = 1  # 3 of every 4 columns of cell column 0
    gi = InstanceData(masks=BitmapMasks(m.numpy().astype('uint8'), 16, 16),
                      labels=torch.tensor([0, 1]))
    masks, labels = head._stride_targets([gi], (4, 4))
    assert masks[0].shape == (2, 4, 4) and labels[0].tolist() == [0, 1]
    assert torch.allclose(masks[0][0, :, 0], torch.tensor([0.5, 0.5, 0.0, 0.0]))
    assert torch.allclose(masks[0][1, 2:, 0], torch.tensor([0.75, 0.75]))
    assert float(masks[0][1, :, 1:].abs().sum()) == 0.0


def test_inner_e_step_points_predict_the_dense_logits_at_the_points():
    """InnerEStepPoints(num_points=P): the E-steps before each layer's last predict B x K x P x 1
    logits, equal to their stride-4 logit map read (bilinear) at the step's points; the output
    and the layers' last E-steps stay dense; every term is still there and trains."""
    from mmcv.ops import point_sample
    cfg = _inner_points(_cfg(), 300)
    model, batch = _build(cfg)
    model.train()
    head = model.panoptic_head
    out, _ = _head_output(model, batch)
    t_last = head.core.num_iters - 1
    inner = [s['iter'] < t_last for s in out.states[:-1]] + [False]
    assert inner == head.point_supervised(out.states) and sum(inner) > 0
    b = out.mask_feats.shape[0]
    assert out.point_coords.shape == (b, 300, 2)
    assert 0 <= float(out.point_coords.min()) and float(out.point_coords.max()) <= 1
    for s, masks, pts in zip(out.states, out.mask_preds, inner):
        if not pts:
            assert masks.shape[-2:] == out.mask_feats.shape[-2:]
            continue
        assert masks.shape == (b, head.num_queries, 300, 1)
        _, dense = head.mask_predictor(s['centers'], out.mask_feats)
        torch.testing.assert_close(
            masks[..., 0], point_sample(dense, out.point_coords, padding_mode='border'),
            rtol=1e-4, atol=1e-4)
    losses = _loss(model, batch)
    dense_keys = set(_loss(*_build(_cfg())))
    # the same terms; a layer's point-supervised E-steps form their own group
    assert {k.split('.')[-1] for k in losses} == {k.split('.')[-1] for k in dense_keys}
    assert 'lv0.pts.loss_mask_id' in losses and 'lv0.loss_mask_id' in losses
    assert all(torch.isfinite(v) for v in losses.values())
    # the inner E-steps' point terms alone train the mask predictor and the decoder
    model.zero_grad()
    sum(v for k, v in losses.items() if k.startswith('lv0.pts.') and
        'e_step' not in k).backward()
    for p in head.mask_predictor.embed.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    model.eval()  # evaluation predicts densely whatever train_cfg says
    with torch.no_grad():
        test_out, _ = _head_output(model, batch)
    assert test_out.point_coords is None
    assert test_out.mask_preds[-1].shape[-2:] == out.mask_feats.shape[-2:]


def test_inner_step_point_terms_estimate_the_dense_terms():
    """The point-supervised terms are the dense ones on a P-pixel map: with many points the
    inner E-steps' mask-ID and PQ-style mask terms come close to their dense values (same
    weights, same step; the targets are read at input pixels instead of area-pooled; the
    thing / stuff terms dense too, not on uncertainty-sampled points)."""
    cfg = _cfg()
    cfg.model.train_cfg.mask_num_points = 0
    model, batch = _build(cfg)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    dense = _loss(model, batch)
    _inner_points(cfg, 20000)
    model2, _ = _build(cfg)
    model2.load_state_dict(state)
    model2.train()
    pts = _loss(model2, batch)
    t_last = model.panoptic_head.core.num_iters - 1
    assert t_last > 0
    for key in ('loss_mask_id', 'loss_pq_mask', 'loss_th_dice', 'loss_st_ce'):
        # level 0's E-steps: all dense, or the point-supervised inner E-steps and the dense
        # last E-step of each layer
        a = float(dense['lv0.' + key])
        b = float(pts['lv0.pts.' + key] + pts['lv0.' + key])
        # measured: 1.7-3.0 % apart (mask-ID 1.8, PQ-style mask 2.7, thing dice 3.0, stuff
        # CE 1.7), from the point draw and the input-pixel targets
        assert abs(a - b) <= 0.06 * abs(a) + 1e-3, (key, a, b)
    # the output's terms are dense in both
    torch.testing.assert_close(dense['loss_mask_id'], pts['loss_mask_id'])


def test_point_targets_read_the_input_pixel_under_each_point():
    from mmengine.structures import InstanceData
    m = torch.zeros(2, 4, 8, dtype=torch.uint8)
    m[0, 1, 6] = 1  # row 1, column 6
    m[1, 3, 0] = 1
    m1 = torch.zeros(1, 4, 8, dtype=torch.uint8)  # a second image with one GT
    m1[0, 3, 0] = 1
    gts = [InstanceData(masks=m, labels=torch.ones(2)),
           InstanceData(masks=m1, labels=torch.ones(1))]
    full = ClustSegPanopticHead.full_res_targets(gts)
    coords = torch.tensor([[6.5 / 8, 1.5 / 4], [0.5 / 8, 3.5 / 4], [1 / 8, 1 / 4]])  # x, y
    got = ClustSegPanopticHead._point_targets(full, torch.stack([coords, coords]))
    assert got.shape == (2, 2, 3, 1)  # B x M_max x P x 1
    assert got[0, ..., 0].tolist() == [[1, 0, 0], [0, 1, 0]]
    assert got[1, ..., 0].tolist() == [[0, 1, 0], [0, 0, 0]]  # the padding GT reads zeros


def test_level_targets_pool_the_matched_targets():
    """The E-step targets: gather_matched of _pooled_targets (the padded GT pooled once per
    level) = the matched stride-4 targets area-pooled to the E-step's level."""
    from clustseg.models.losses import build_query_targets, gather_matched, pad_stack
    torch.manual_seed(0)
    gt = [torch.rand(3, 16, 16).round(), torch.rand(1, 16, 16).round()]
    labels = [torch.tensor([0, 1, 2]), torch.tensor([4])]
    gt_inds = [torch.tensor([2, 0, 3, 1]), torch.tensor([0, 1, 0, 0])]
    ref = build_query_targets(gt_inds, gt, labels, num_classes=5)
    cache = {}
    padded = pad_stack(gt)
    pooled = ClustSegPanopticHead._pooled_targets(padded, (4, 4), cache)
    assert ClustSegPanopticHead._pooled_targets(padded, (4, 4), cache) is pooled  # once
    got = gather_matched(pooled, torch.stack(gt_inds) - 1)
    torch.testing.assert_close(got, F.interpolate(ref.masks, size=(4, 4), mode='area'))
    assert got[1, [0, 2, 3]].abs().sum() == 0  # unmatched queries: zeros
    assert list(cache) == [(4, 4)]


def test_all_e_steps_matched_at_once_equal_each_matched_alone(setup, monkeypatch):
    """_assign_steps (every E-step of an image costed together, matched after one transfer,
    in chunks) gives each E-step the matching the assigner gives it alone, on the real
    images' predictions."""
    from mmengine.structures import InstanceData
    import clustseg.models.heads.clustseg_head as mod
    model, batch = setup
    model.train()
    head = model.panoptic_head
    out, gts = _head_output(model, batch)
    gt_masks, gt_labels = head._stride_targets(gts, tuple(out.mask_preds[-1].shape[-2:]))
    qsc = out.core.query_classes
    # chunks of 4 E-steps (and the rest), and the CPU's one at a time
    monkeypatch.setitem(mod.MATCH_CHUNK_ELEMENTS, 'cpu', 4 * out.mask_preds[0][0].numel())
    got = head._assign_steps(out.cls_scores, out.mask_preds, gt_masks, gt_labels, qsc)
    assert got.shape == (len(out.cls_scores), 2, head.num_queries)
    monkeypatch.setitem(mod.MATCH_CHUNK_ELEMENTS, 'cpu', 1)
    assert torch.equal(head._assign_steps(out.cls_scores, out.mask_preds, gt_masks, gt_labels,
                                          qsc), got)
    for s, (cls, masks) in enumerate(zip(out.cls_scores, out.mask_preds)):
        for b in range(2):
            r = head.assigner.assign(InstanceData(scores=cls[b].detach(),
                                                  masks=masks[b].detach()),
                                     InstanceData(labels=gt_labels[b], masks=gt_masks[b]),
                                     img_meta=dict(query_stuff_classes=qsc))
            assert torch.equal(got[s, b], r.gt_inds.cpu() - 1), (s, b)
    assert (got >= 0).any()


def test_each_e_step_is_supervised_with_its_own_matching(setup, monkeypatch):
    """The loss of every supervised E-step reads the matching _assign_steps gave that E-step
    (the deep supervision of Eq. 12 matches each E-step's own prediction), not another's:
    on the real images most E-steps' matchings differ from the final one's."""
    model, batch = setup
    model.train()
    head = model.panoptic_head
    out, gts = _head_output(model, batch)
    assigned, used = {}, {}
    assign, step_losses = head._assign_steps, head._step_losses

    def spy_assign(cls_list, masks_list, *args, **kwargs):
        idx = assign(cls_list, masks_list, *args, **kwargs)
        for m, g in zip(masks_list, idx):
            assigned[id(m)] = g.clone()
        return idx

    def spy_losses(cls, masks, probs, hw, gt_index, *args, **kwargs):
        assert len(masks) == 1  # the CPU: one E-step at a time
        used[id(masks[0])] = gt_index.cpu().clone()
        return step_losses(cls, masks, probs, hw, gt_index, *args, **kwargs)

    monkeypatch.setattr(head, '_assign_steps', spy_assign)
    monkeypatch.setattr(head, '_step_losses', spy_losses)
    head.loss_by_feat(out, gts, None)
    steps = [id(m) for m in out.mask_preds]
    assert set(used) == set(assigned) == set(steps)
    for s, key in enumerate(steps):
        assert torch.equal(used[key], assigned[key]), s
    final = assigned[steps[-1]]
    assert sum(not torch.equal(assigned[k], final) for k in steps[:-1]) >= len(steps) // 2


def test_an_assigner_that_cannot_match_several_predictions_is_an_error():
    cfg = Config.fromfile(str(CFG))
    cfg.model.train_cfg.assigner = dict(type='mmdet.HungarianAssigner',
                                        match_costs=[dict(type='PQProductCost')])
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(
            TypeError, match='model.train_cfg.assigner must match several predictions'):
        MODELS.build(cfg.model)
    cfg.model.train_cfg.assigner = dict(
        type='FixedStuffHungarianAssigner',
        match_costs=[dict(type='PQProductCost'), dict(type='mmdet.ClassificationCost')])
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(
            TypeError, match=r"match_costs: .*\['ClassificationCost'\]"):
        MODELS.build(cfg.model)


@pytest.mark.parametrize('sup, match', [
    ('all', r"'all' is not a registered deep-supervision variant; registered: \["),
    (dict(type='SoftmaxOverClusters'), 'is not a registered deep-supervision variant'),
    (dict(type='InnerEStepPoints', num_points=0), r'num_points must be an integer >= 1, got 0'),
    (dict(type='OutputOnly', num_points=5), r'OutputOnly\(\) takes no arguments'),
])
def test_bad_deep_supervision_is_an_error(sup, match):
    cfg = Config.fromfile(str(CFG))
    cfg.model.panoptic_head.deep_supervision = sup
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(
            ValueError, match=r'model\.panoptic_head\.deep_supervision.*' + match):
        MODELS.build(cfg.model)


def test_inner_e_step_maps_supervise_the_inner_e_steps_through_their_maps(monkeypatch):
    """InnerEStepMaps: each layer's last E-step predicts and gets every term; the E-steps
    before it predict nothing (no output centers are computed for them) and get the E-step
    map term only, per level under ``lv{level}.maps.``, read with the matching of their
    layer's last E-step; that term alone trains the decoder's Q / K projections."""
    cfg = _cfg()
    cfg.model.panoptic_head.deep_supervision = dict(type='InnerEStepMaps')
    model, batch = _build(cfg)
    model.train()
    head = model.panoptic_head
    out, _ = _head_output(model, batch)
    t_last, n_layers = head.core.num_iters - 1, len(head.core.decoder.layer_levels)
    assert t_last > 0 and n_layers == 3
    assert [(s['layer'], s['iter']) for s in out.states] == [(i, t_last) for i in range(3)]
    assert [(s['layer'], s['iter']) for s in out.map_states] == \
        [(i, t) for i in range(3) for t in range(t_last)]
    assert all(s['centers'] is None and s['probs'].dim() == 3 for s in out.map_states)
    assert len(out.mask_preds) == len(out.cls_scores) == 3
    calls = []
    orig = ClustSegPanopticHead._e_step_loss

    def spy(cls, probs, hw, rows, targets):
        calls.append((probs.shape, rows.clone()))
        return orig(probs, hw, rows, targets)

    monkeypatch.setattr(ClustSegPanopticHead, '_e_step_loss', classmethod(spy))
    losses = _loss(model, batch)
    levels = head.core.decoder.layer_levels
    # every term of the layers' last E-steps (the output's unprefixed), the maps' per level
    assert set(losses) == ({f'lv{lv}.{k}' for lv in levels[:-1] for k in STEP_KEYS} |
                           set(STEP_KEYS) | set(ONCE_KEYS) |
                           {f'lv{lv}.maps.loss_e_step_mask_id' for lv in levels})
    assert all(torch.isfinite(v) for v in losses.values())
    # the layers' last E-steps (one call each, in layer order), then the maps per level: the
    # inner E-steps of layer i read layer i's matching
    b = out.mask_feats.shape[0]
    assert len(calls) == 6
    for i in range(3):
        (last_shape, last_rows), (map_shape, map_rows) = calls[i], calls[3 + i]
        assert last_shape[0] == b and map_shape[0] == t_last * b
        assert torch.equal(map_rows, last_rows.repeat(t_last, 1))
        assert (last_rows >= 0).any()
    model.zero_grad()
    losses['lv0.maps.loss_e_step_mask_id'].backward()
    attn = head.core.decoder.layers[0].cross_attn
    for p in (attn.q_proj.weight, attn.k_proj.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in head.mask_predictor.parameters())
    model.eval()  # evaluation predicts the output as always
    with torch.no_grad():
        test_out, _ = _head_output(model, batch)
    assert test_out.map_states == () and len(test_out.mask_preds) == 1


@pytest.mark.parametrize('head, match', [
    (dict(loss_weights=dict(e_step=0.0)), r'loss_weights.e_step > 0'),
    (dict(decoder=dict(local_levels=(2, ))), r'dense E-step maps'),
])
def test_inner_e_step_maps_refuse_a_head_without_their_loss(head, match):
    cfg = Config.fromfile(str(CFG))
    cfg.model.panoptic_head.update(head)
    cfg.model.panoptic_head.deep_supervision = dict(type='InnerEStepMaps')
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(
            ValueError, match=r'model\.panoptic_head\.deep_supervision=InnerEStepMaps: .*' + match):
        MODELS.build(cfg.model)


def test_semantic_map_takes_the_last_covering_segment():
    """_semantic_map equals writing each segment's class over its pixels in order (later
    segments win on overlaps), 255 where no segment (or only padding) covers a pixel."""
    from clustseg.models.losses import pad_stack
    gen = torch.Generator().manual_seed(0)
    for n in ((3, 0), (0, 0), (4, 2)):
        masks = [(torch.rand(k, 7, 9, generator=gen) > 0.6).float() for k in n]
        labels = [torch.randint(0, 133, (k, ), generator=gen) for k in n]
        ref = torch.full((len(n), 7, 9), 255, dtype=torch.long)
        for i, (m, lab) in enumerate(zip(masks, labels)):
            for j in range(m.shape[0]):
                ref[i][m[j] > 0.5] = lab[j]
        got = ClustSegPanopticHead._semantic_map(pad_stack(masks), pad_stack(labels))
        assert torch.equal(got, ref)
        assert (got != 255).any() == any(k > 0 for k in n)


@pytest.mark.parametrize('inner_points, levels', [(None, None), (64, None),
                                                  (None, (0, 1, 2, 0, 1, 2))])
def test_stacked_e_steps_equal_one_e_step_at_a_time(inner_points, levels, monkeypatch):
    """A decoder level's E-steps evaluated stacked along the batch (a GPU's STACK_E_STEPS)
    give the same keys, values and gradients as one E-step at a time (the CPU's): dense thing /
    stuff terms, so no random draw depends on the grouping; also when a level's E-steps are
    not consecutive (interleaved layer levels)."""
    cfg = _inner_points(_cfg(), inner_points)
    cfg.model.train_cfg.mask_num_points = 0
    if levels is not None:
        cfg.model.panoptic_head.decoder.layer_levels = levels
    model, batch = _build(cfg)
    model.train()
    head = model.panoptic_head
    out, gts = _head_output(model, batch)
    groups = head.step_groups(out.states, head.point_supervised(out.states))
    assert max(len(g) for _, g in groups) > 1
    if levels is not None:  # a group with a gap
        assert any(g != list(range(g[0], g[-1] + 1)) for _, g in groups)
    params = [p for p in head.parameters() if p.requires_grad]
    assert_stacking_changes_nothing(monkeypatch, lambda: head.loss_by_feat(out, gts, None),
                                    params, keep=lambda k: k.split('.')[-1] in STEP_KEYS)


def test_group_sums_divide_each_segment_by_its_e_steps_factor():
    """Segments of a group of G = 2 E-steps over B = 2 images (images 0, 1: E-step 0;
    images 2, 3: E-step 1): each thing / stuff term over its own E-step's factor."""
    ce = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    dice = torch.tensor([0.5, 0.25, 1.0, 2.0, 4.0])
    thing = torch.tensor([True, False, True, True, False])
    image = torch.tensor([0, 1, 2, 3, 3])
    factors = torch.tensor([[2.0, 4.0], [8.0, 16.0]])  # per E-step: things, stuff
    th, st = ClustSegPanopticHead._group_sums(ce, dice, thing, image, factors, 2)
    assert th['ce'].item() == pytest.approx(1 / 2 + 3 / 8 + 4 / 8)
    assert st['ce'].item() == pytest.approx(2 / 4 + 5 / 16)
    assert th['dice'].item() == pytest.approx(0.5 / 2 + 1 / 8 + 2 / 8)
    assert st['dice'].item() == pytest.approx(0.25 / 4 + 4 / 16)


@pytest.mark.parametrize('gap', [5.0, 25.0, 40.0])
def test_e_step_loss_keeps_its_gradient_for_a_pixel_in_the_wrong_cluster(gap):
    """Every pixel's E-step map puts it in cluster 1 with a logit gap ``gap`` over its GT
    cluster 0: the loss is the exact -log p (about the gap) and its gradient pulls the pixel
    towards its cluster, however confident the wrong assignment (with a floor of 1e-8 the
    loss was a constant 18.42 without gradient beyond a gap of about 18)."""
    h = w = 4
    logits = torch.zeros(1, 2, h * w)
    logits[:, 1] = gap
    logits.requires_grad_(True)
    probs = logits.softmax(dim=1)  # 1 x K x HW: the E-step map, softmax over the clusters
    rows = torch.tensor([[0]])  # GT segment 0 is matched to query 0
    targets = torch.ones(1, 1, h, w)  # it covers every pixel
    loss = ClustSegPanopticHead._e_step_loss(probs, (h, w), rows, targets)
    exact = torch.nn.functional.softplus(torch.tensor(gap))  # -log softmax for cluster 0
    torch.testing.assert_close(loss, exact, rtol=1e-5, atol=1e-5)
    loss.backward()
    # d(-log p_0) / d logit_0 = -(1 - p_0), per pixel averaged over the HW pixels
    torch.testing.assert_close(logits.grad[0, 0], torch.full((h * w, ), -(1 - torch.sigmoid(
        torch.tensor(-gap))).item() / (h * w)), rtol=1e-4, atol=1e-7)



@pytest.mark.parametrize('gap', [68.0, 80.0])
def test_e_step_loss_gradient_stays_finite_under_a_large_fp16_loss_scale(gap):
    """Pixels of a 64 x 64 map in the wrong cluster by a logit gap of 68 (p = 3e-30, just above
    the floor: the exact gradient) or 80 (p = 2e-35, below it: no gradient), with the loss
    scaled by 2^32 as a growing fp16 GradScaler may: the backward's g / p must not overflow fp32
    (with the floor at fp32's tiny, 1.2e-38, the second overflowed to inf / nan)."""
    h = w = 64
    logits = torch.zeros(1, 2, h * w)
    logits[:, 1] = gap
    logits.requires_grad_(True)
    loss = ClustSegPanopticHead._e_step_loss(logits.softmax(dim=1), (h, w), torch.tensor([[0]]),
                                             torch.ones(1, 1, h, w))
    (loss * 2.0 ** 32).backward()
    assert torch.isfinite(logits.grad).all()
    expect = -2.0 ** 32 / (h * w) if gap < 69 else 0.0
    torch.testing.assert_close(logits.grad[0, 0], torch.full((h * w, ), expect), rtol=1e-3,
                               atol=0)
