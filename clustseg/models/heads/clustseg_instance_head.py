"""ClustSeg's instance head (supplementary A.2): Mask2Former's mask protocol, sigmoid class FFN."""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.registry import TASK_UTILS
from mmdet.structures import SampleList
from mmdet.utils import reduce_mean
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor

from clustseg.registry import MODELS
from ..losses import mask_bce_dice_loss, sample_mask_points, sigmoid_class_loss
from ..losses.loss_utils import fp32_island
from ..utils import check_positive_int
from .clustseg_head import ClustSegHead, HeadOutput, top1_class_logprobs

#: the mmdet loss-config settings the mask terms implement (Mask2Former's): any other value of
#: these keys, or another key, is an error naming it
MASK_LOSS = dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean')
DICE_LOSS = dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                 naive_dice=True)


def _loss_setting(cfg: dict, fixed: dict, key: str, extra=('loss_weight', )) -> dict:
    """Checks an mmdet loss config against the settings this head implements."""
    for k, v in cfg.items():
        if k in extra:
            continue
        if k not in fixed:
            raise KeyError(f'model.panoptic_head.{key}.{k} has no effect here (the instance '
                           f'head reads {sorted(fixed) + list(extra)})')
        if v != fixed[k]:
            raise ValueError(f'model.panoptic_head.{key}.{k}={v!r} is not supported: the '
                             f'instance head computes {key} with {k}={fixed[k]!r}')
    return cfg


@MODELS.register_module()
class ClustSegInstanceHead(ClustSegHead):
    """:class:`ClustSegHead` whose class prediction is the paper's "small FFN ... trained with a
    binary cross-entropy loss" on the instance centers.

    ``cls = FFN(LN(C))``: ``B x K x C`` logits (no no-object column; a query is "no object"
    when all its sigmoids are low). Per supervised E-step: Hungarian matching through the
    assigner on point-sampled masks (Mask2Former's recipe: ``train_cfg.num_points`` uniform
    points shared by predictions and ground truth; the config's costs, e.g. ``FocalLossCost``
    on these logits + mask BCE + dice), then ``class_loss_weight x``
    :func:`sigmoid_class_loss` (one-hot targets, all-zero for unmatched queries, weighted
    ``no_object_weight``) and Mask2Former's point-sampled mask BCE and dice
    (:func:`mask_bce_dice_loss`; ``loss_mask`` / ``loss_dice`` are mmdet loss configs of which
    ``loss_weight`` and the dice ``eps`` take effect; the paper: 5 and 2).

    Prediction: a query's class and score are the argmax / max of its sigmoids, handed to
    mmdet's ``MaskFormerFusionHead`` as a log-distribution with the score on that class and
    ``1 - score`` on no-object (:func:`top1_class_logprobs`); masks are per-query sigmoids.

    Args:
        class_loss_weight (float): weight of the class BCE (Mask2Former's class weight, 2).
        no_object_weight (float): weight of an unmatched query's BCE (Mask2Former: 0.1).
        loss_mask, loss_dice (dict): mmdet loss configs (see above; other settings are errors).
        **kwargs: :class:`ClustSegHead` arguments.
    """

    def __init__(self, class_loss_weight=2.0, no_object_weight=0.1,
                 loss_mask=dict(MASK_LOSS, loss_weight=5.0),
                 loss_dice=dict(DICE_LOSS, eps=1.0, loss_weight=2.0), **kwargs):
        if 'loss_cls' in kwargs:
            raise KeyError('ClustSegInstanceHead does not take loss_cls: its class loss is the '
                           'sigmoid BCE of the class FFN (class_loss_weight, no_object_weight)')
        if not class_loss_weight > 0 or not no_object_weight >= 0:
            raise ValueError('model.panoptic_head: class_loss_weight must be > 0 and '
                             f'no_object_weight >= 0, got {class_loss_weight}, '
                             f'{no_object_weight}')
        super().__init__(**kwargs)
        if self.num_stuff_classes:
            raise ValueError('ClustSegInstanceHead: num_stuff_classes must be 0 (instance '
                             'segmentation has no stuff queries)')
        self.class_loss_weight = float(class_loss_weight)
        self.no_object_weight = float(no_object_weight)
        self.mask_loss_weight = float(_loss_setting(loss_mask, MASK_LOSS, 'loss_mask')
                                      .get('loss_weight', 1.0))
        dice = _loss_setting(loss_dice, DICE_LOSS, 'loss_dice', extra=('loss_weight', 'eps'))
        self.dice_loss_weight = float(dice.get('loss_weight', 1.0))
        self.dice_eps = float(dice.get('eps', 1e-3))
        self.sampler = TASK_UTILS.build(self.train_cfg['sampler'], default_args=dict(context=self))
        check_positive_int('model.train_cfg.num_points', self.train_cfg['num_points'])
        self.num_points = self.train_cfg['num_points']
        self.oversample_ratio = self.train_cfg['oversample_ratio']
        self.importance_sample_ratio = self.train_cfg['importance_sample_ratio']
        d = self.embed_dims
        self.cls_ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True),
                                     nn.Linear(d, self.num_classes))

    def default_train_cfg(self) -> dict:
        """mmdet's Mask2Former keys: ``assigner``, ``sampler``, ``num_points``,
        ``oversample_ratio``, ``importance_sample_ratio``."""
        return dict(assigner=dict(type='FixedStuffHungarianAssigner',
                                  num_things_classes=self.num_things_classes, match_costs=[
                                      dict(type='FocalLossCost', weight=2.0),
                                      dict(type='CrossEntropyLossCost', weight=5.0,
                                           use_sigmoid=True),
                                      dict(type='DiceCost', weight=5.0, pred_act=True,
                                           eps=1.0)]),
                    sampler=dict(type='MaskPseudoSampler'), num_points=12544,
                    oversample_ratio=3.0, importance_sample_ratio=0.75)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.cls_ffn[-1].bias, bias_init_with_prob(0.01))

    def _classify(self, c: Tensor) -> Tensor:
        """Normalised centers B x K x D -> class FFN logits B x K x C (sigmoid)."""
        return self.cls_ffn(c)

    # ------------------------------------------------------------------ training
    def _match(self, cls_score: Tensor, mask_pred: Tensor, gt: InstanceData,
               query_classes: Tensor):
        """One image (K x C logits, K x h x w masks): Mask2Former's matching on ``num_points``
        uniform points -> (labels K (num_classes = none), mask targets N x H x W, mask weights K,
        the sampler's ``avg_factor``)."""
        num_queries, num_gts = cls_score.shape[0], gt.labels.shape[0]
        coords = torch.rand((1, self.num_points, 2), device=cls_score.device)
        pred_pts = point_sample(mask_pred.unsqueeze(1),
                                coords.repeat(num_queries, 1, 1)).squeeze(1)
        gt_pts = point_sample(gt.masks.unsqueeze(1).float(),
                              coords.repeat(num_gts, 1, 1)).squeeze(1)
        assign = self.assigner.assign(
            pred_instances=InstanceData(scores=cls_score, masks=pred_pts),
            gt_instances=InstanceData(labels=gt.labels, masks=gt_pts),
            img_meta=dict(query_stuff_classes=query_classes))
        res = self.sampler.sample(assign_result=assign,
                                  pred_instances=InstanceData(scores=cls_score, masks=mask_pred),
                                  gt_instances=gt)
        labels = gt.labels.new_full((num_queries, ), self.num_classes, dtype=torch.long)
        labels[res.pos_inds] = gt.labels[res.pos_assigned_gt_inds]
        weights = mask_pred.new_zeros((num_queries, ))
        weights[res.pos_inds] = 1.0
        return labels, gt.masks[res.pos_assigned_gt_inds], weights, res.avg_factor

    def _step_losses(self, cls_scores: Tensor, mask_preds: Tensor,
                     batch_gt_instances: List[InstanceData], query_classes: Tensor
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """One E-step: cls_scores B x K x C, mask_preds B x K x H4 x W4 -> (class BCE, mask
        BCE, dice), weighted."""
        matched = [self._match(c, m, g, query_classes)
                   for c, m, g in zip(cls_scores, mask_preds, batch_gt_instances)]
        labels = torch.stack([m[0] for m in matched])  # B x K, num_classes = no object
        loss_cls = self.class_loss_weight * sigmoid_class_loss(
            cls_scores, labels, no_object_weight=self.no_object_weight)
        num_masks = float(sum(m[3] for m in matched))
        num_masks = max(float(reduce_mean(cls_scores.new_tensor([num_masks]))), 1.0)
        preds = mask_preds[torch.stack([m[2] for m in matched]) > 0]  # N x H4 x W4
        targets = torch.cat([m[1] for m in matched])  # N x H x W
        if targets.shape[0] == 0:
            zero = mask_preds.sum() * 0.0
            return loss_cls, zero, zero
        pred_pts, gt_pts = sample_mask_points(preds, targets, self.num_points,
                                              self.oversample_ratio,
                                              self.importance_sample_ratio)
        terms = mask_bce_dice_loss(pred_pts, gt_pts, avg_factor=num_masks,
                                   dice_eps=self.dice_eps)
        return (loss_cls, self.mask_loss_weight * terms['bce'],
                self.dice_loss_weight * terms['dice'])

    def loss_by_feat(self, out: HeadOutput, batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict]) -> dict:
        """Every supervised E-step's losses; the last unprefixed, the others ``d{i}.``."""
        losses = {}
        n = len(out.cls_scores)
        for i, (cls, masks) in enumerate(zip(out.cls_scores, out.mask_preds)):
            terms = self._step_losses(cls, masks, batch_gt_instances, out.core.query_classes)
            p = '' if i == n - 1 else f'd{i}.'
            for name, v in zip(('loss_cls', 'loss_mask', 'loss_dice'), terms):
                losses[p + name] = v
        return losses

    def predict(self, x, batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """-> (class log-probabilities B x K x (C + 1), mask logits B x K x H x W at the padded
        input size) for ``MaskFormerFusionHead``."""
        out = self(x, batch_data_samples)
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        masks = F.interpolate(out.mask_preds[-1], size=(h, w), mode='bilinear',
                              align_corners=False)
        with fp32_island(out.cls_scores[-1]):
            score, label = out.cls_scores[-1].float().sigmoid().max(dim=-1)  # B x K
            cls_logp = top1_class_logprobs(label, score, self.num_classes)
        return cls_logp, masks
