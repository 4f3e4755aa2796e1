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


def test_class_ffn_replaces_the_softmax_classifier_and_every_parameter_trains(setup):
    model, batch = setup
    head = model.panoptic_head
    assert not hasattr(head, 'cls_embed')
    model.train()
    losses = _loss(model, batch)
    n = len(head.core.decoder.layer_levels) * head.core.decoder.num_iters
    keys = ('loss_cls', 'loss_mask', 'loss_dice')
    assert set(losses) == {f'd{i}.{k}' for i in range(n - 1) for k in keys} | set(keys)
    model.zero_grad()
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert head.cls_ffn[-1].weight.grad.abs().sum() > 0


def test_class_loss_is_the_weighted_sigmoid_bce_of_the_matched_labels(setup):
    model, batch = setup
    head = model.panoptic_head
    model.train()
    seen = []
    real = head._step_losses

    def spy(cls_scores, mask_preds, gts, gt_labels, gt_inds, device_gt_inds):
        seen.append((cls_scores, gts, gt_inds))
        return real(cls_scores, mask_preds, gts, gt_labels, gt_inds, device_gt_inds)

    head._step_losses = spy  # one call per supervised E-step
    try:
        losses = _loss(model, batch)
    finally:
        del head._step_losses
    cls, gts, gt_inds = seen[-1]  # the final E-step
    labels = torch.full(gt_inds.shape, head.num_classes, dtype=torch.long)
    for b, g in enumerate(gts):
        pos = gt_inds[b] > 0
        labels[b, pos] = g.labels[gt_inds[b][pos] - 1].long()
    # matched queries carry their GT class, the others "no object" (= num_classes)
    assert (labels < head.num_classes).sum() == sum(
        len(ds.gt_instances) for ds in batch['data_samples'])
    expected = 2.0 * sigmoid_class_loss(cls, labels, no_object_weight=0.1)
    torch.testing.assert_close(losses['loss_cls'], expected)


def test_matching_every_e_step_of_an_image_equals_the_assigner_per_e_step(setup):
    """_match_image: each E-step matched on its own uniform points (one draw for all of
    them), the S assignments after one host transfer, equal to the assigner's assign per
    E-step on the same points."""
    from mmcv.ops import point_sample
    from mmengine.structures import InstanceData
    model, batch = setup
    head = model.panoptic_head
    model.train()
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        x = model.extract_feat(data['inputs'])
        out = head(x, data['data_samples'])
        gts = head.preprocess_gt(data['data_samples'])
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
        coords = torch.rand((s, head.num_points, 2))
        for i in range(s):
            pts = coords[i:i + 1]
            pred = point_sample(masks[i].unsqueeze(1), pts.repeat(k, 1, 1)).squeeze(1)
            gt_pts = point_sample(gt.masks.unsqueeze(1).float(),
                                  pts.repeat(len(gt.labels), 1, 1)).squeeze(1)
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


def test_prediction_hands_the_top_sigmoid_class_to_the_fusion_head(setup):
    model, batch = setup
    head = model.panoptic_head
    model.eval()
    with torch.no_grad(), DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, False)
        x = model.extract_feat(data['inputs'])
        cls_logp, masks = head.predict(x, data['data_samples'])
        all_cls = head(x, data['data_samples']).cls_scores
        results = model.predict(data['inputs'], data['data_samples'])
    s, lab = all_cls[-1].sigmoid().max(-1)
    probs = cls_logp.softmax(-1)  # what MaskFormerFusionHead computes
    torch.testing.assert_close(probs.gather(2, lab[..., None])[..., 0], s, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(probs[..., -1], 1 - s, atol=1e-5, rtol=1e-4)
    assert masks.shape[-2:] == tuple(data['data_samples'][0].metainfo['batch_input_shape'])
    inst = results[0].pred_instances
    assert len(inst) == head.test_cfg['max_per_image']
    assert set(inst.keys()) >= {'masks', 'bboxes', 'scores', 'labels'}
    assert int(inst.labels.max()) < head.num_classes


@pytest.mark.parametrize('change, err, match', [
    (dict(loss_cls=dict(type='CrossEntropyLoss')), KeyError, 'loss_cls'),
    (dict(num_stuff_classes=53), ValueError, 'num_stuff_classes'),
    (dict(class_loss_weight=0.0), ValueError, 'class_loss_weight'),
])
def test_bad_head_arguments_are_errors(change, err, match):
    cfg = _cfg()
    cfg.model.panoptic_head.update(change)
    with pytest.raises(err, match=match), DefaultScope.overwrite_default_scope('mmdet'):
        MODELS.build(cfg.model)
