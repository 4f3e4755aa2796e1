"""ClustSeg's instance head (supplementary A.2): Mask2Former's mask protocol, sigmoid class FFN."""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.structures import SampleList
from mmdet.utils import reduce_mean
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor

from clustseg.registry import MODELS
from ..losses import (gather_query_labels, mask_bce_dice_loss, pad_stack, sample_mask_points,
                      sigmoid_class_loss)
from ..losses.loss_utils import fp32_island
from ..task_modules import fixed_stuff_gt_inds
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
    points shared by predictions and ground truth, drawn anew for each E-step; the config's
    costs, e.g. ``FocalLossCost`` on these logits + mask BCE + dice; every E-step of an image
    matched after one host transfer, :meth:`_match_image`), then ``class_loss_weight x``
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
        if not (callable(getattr(self.assigner, 'cost', None)) and
                hasattr(self.assigner, 'num_things_classes')):
            raise TypeError('model.train_cfg.assigner must give its summed match costs and '
                            'match several E-steps after one host transfer (cost, '
                            'num_things_classes: FixedStuffHungarianAssigner), got '
                            f'{type(self.assigner).__name__}')
        check_positive_int('model.train_cfg.num_points', self.train_cfg['num_points'])
        self.num_points = self.train_cfg['num_points']
        self.oversample_ratio = self.train_cfg['oversample_ratio']
        self.importance_sample_ratio = self.train_cfg['importance_sample_ratio']
        d = self.embed_dims
        self.cls_ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True),
                                     nn.Linear(d, self.num_classes))

    def default_train_cfg(self) -> dict:
        """mmdet's Mask2Former keys: ``assigner``, ``num_points``, ``oversample_ratio``,
        ``importance_sample_ratio`` (no ``sampler``: the matched queries are the positives, as
        mmdet's ``MaskPseudoSampler`` gives)."""
        return dict(assigner=dict(type='FixedStuffHungarianAssigner',
                                  num_things_classes=self.num_things_classes, match_costs=[
                                      dict(type='FocalLossCost', weight=2.0),
                                      dict(type='CrossEntropyLossCost', weight=5.0,
                                           use_sigmoid=True),
                                      dict(type='DiceCost', weight=5.0, pred_act=True,
                                           eps=1.0)]),
                    num_points=12544,
                    oversample_ratio=3.0, importance_sample_ratio=0.75)

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.cls_ffn[-1].bias, bias_init_with_prob(0.01))

    def _classify(self, c: Tensor) -> Tensor:
        """Normalised centers B x K x D -> class FFN logits B x K x C (sigmoid)."""
        return self.cls_ffn(c)

    # ------------------------------------------------------------------ training
    def _match_image(self, cls_scores: List[Tensor], mask_preds: List[Tensor],
                     gt: InstanceData, query_classes: Tensor) -> Tensor:
        """Every supervised E-step of one image (S class logits K x C, S masks K x h x w):
        Mask2Former's matching on ``num_points`` uniform points drawn for each E-step (the
        GT read at all of them at once), the assigner's costs per E-step, then the S
        assignments after one host transfer (:func:`fixed_stuff_gt_inds`) -> S x K host
        ``gt_inds`` (0 = unmatched, ``m + 1`` = GT ``m``), what the assigner's ``assign``
        gives for each E-step."""
        s, k = len(cls_scores), cls_scores[0].shape[0]
        m = gt.labels.shape[0]
        if m == 0 or k == 0:
            return torch.zeros(s, k, dtype=torch.long)
        coords = torch.rand((s, self.num_points, 2), device=cls_scores[0].device)
        # M x S x P: each E-step's points read from the GT masks in one call
        gt_pts = point_sample(gt.masks.unsqueeze(1).float(),
                              coords.view(1, -1, 2).expand(m, -1, -1)).view(m, s, -1)
        meta = dict(query_stuff_classes=query_classes)
        costs = []
        for i in range(s):
            pred_pts = point_sample(mask_preds[i].unsqueeze(1),
                                    coords[i:i + 1].expand(k, -1, -1)).squeeze(1)  # K x P
            costs.append(self.assigner.cost(
                InstanceData(scores=cls_scores[i], masks=pred_pts),
                InstanceData(labels=gt.labels, masks=gt_pts[:, i]), meta))
        return fixed_stuff_gt_inds(torch.stack(costs), gt.labels, query_classes,
                                   self.assigner.num_things_classes)

    def _step_losses(self, cls_scores: Tensor, mask_preds: Tensor,
                     batch_gt_instances: List[InstanceData], gt_labels: Tensor,
                     gt_inds: Tensor, device_gt_inds: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """One E-step: cls_scores B x K x C, mask_preds B x K x H4 x W4, the padded GT labels
        B x M, its matching ``gt_inds`` (B x K, :meth:`_match_image`) on the host and on the
        device -> (class BCE, mask BCE, dice), weighted. The matched queries are read with
        host indices (no device read)."""
        device = cls_scores.device
        # num_classes = no object
        labels = gather_query_labels(gt_labels, device_gt_inds - 1, self.num_classes)
        loss_cls = self.class_loss_weight * sigmoid_class_loss(
            cls_scores, labels, no_object_weight=self.no_object_weight)
        pos = gt_inds > 0
        num_masks = float(pos.sum())
        num_masks = max(float(reduce_mean(cls_scores.new_tensor([num_masks]))), 1.0)
        bb, qq = pos.nonzero(as_tuple=True)  # (image, query) on the host
        if bb.numel() == 0:
            zero = mask_preds.sum() * 0.0
            return loss_cls, zero, zero
        preds = mask_preds[bb.to(device), qq.to(device)]  # N x H4 x W4
        targets = torch.cat([g.masks[(gt_inds[b][pos[b]] - 1).to(device)]
                             for b, g in enumerate(batch_gt_instances)])  # N x H x W
        pred_pts, gt_pts = sample_mask_points(preds, targets, self.num_points,
                                              self.oversample_ratio,
                                              self.importance_sample_ratio)
        terms = mask_bce_dice_loss(pred_pts, gt_pts, avg_factor=num_masks,
                                   dice_eps=self.dice_eps)
        return (loss_cls, self.mask_loss_weight * terms['bce'],
                self.dice_loss_weight * terms['dice'])

    def loss_by_feat(self, out: HeadOutput, batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict]) -> dict:
        """Every supervised E-step's losses; the last unprefixed, the others ``d{i}.``. Each
        image's E-steps are matched together first (:meth:`_match_image`)."""
        qc = out.core.query_classes
        per_image = [self._match_image([c[b] for c in out.cls_scores],
                                       [m[b] for m in out.mask_preds], g, qc)
                     for b, g in enumerate(batch_gt_instances)]  # B of S x K
        gt_inds = torch.stack(per_image, dim=1)  # S x B x K, host
        device = out.cls_scores[0].device
        device_gt_inds = gt_inds.to(device)  # one transfer for every E-step
        gt_labels = pad_stack([g.labels.long() for g in batch_gt_instances])  # B x M
        losses = {}
        n = len(out.cls_scores)
        for i, (cls, masks) in enumerate(zip(out.cls_scores, out.mask_preds)):
            terms = self._step_losses(cls, masks, batch_gt_instances, gt_labels, gt_inds[i],
                                      device_gt_inds[i])
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
