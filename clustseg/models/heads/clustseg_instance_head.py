"""ClustSeg's instance head (supplementary A.2): Mask2Former's mask protocol, sigmoid class FFN."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.structures import SampleList
from mmdet.utils import reduce_mean
from mmengine.model import bias_init_with_prob
from torch import Tensor

from clustseg.registry import MODELS
from ..losses import mask_bce_dice_loss, sample_mask_points, sigmoid_class_loss
from ..losses.loss_utils import fp32_island
from .clustseg_head import ClustSegHead, top1_class_logprobs


@MODELS.register_module()
class ClustSegInstanceHead(ClustSegHead):
    """:class:`ClustSegHead` whose class prediction is the paper's "small FFN ... trained with a
    binary cross-entropy loss" on the instance centers.

    ``cls = FFN(LN(C))``: ``B x K x C`` logits (no no-object column; a query is "no object"
    when all its sigmoids are low). Per supervised E-step: Hungarian matching through mmdet's
    assigner (the config's costs, e.g. ``FocalLossCost`` on these logits + mask BCE + dice),
    then ``class_loss_weight x`` :func:`sigmoid_class_loss` (one-hot targets, all-zero for
    unmatched queries, weighted ``no_object_weight``) and Mask2Former's point-sampled mask BCE
    and dice (``loss_mask`` / ``loss_dice`` weights; the paper: 5 and 2).

    Prediction: a query's class and score are the argmax / max of its sigmoids, handed to
    mmdet's ``MaskFormerFusionHead`` as a log-distribution with the score on that class and
    ``1 - score`` on no-object (:func:`top1_class_logprobs`); masks are per-query sigmoids.

    Args:
        class_loss_weight (float): weight of the class BCE (Mask2Former's class weight, 2).
        no_object_weight (float): weight of an unmatched query's BCE (Mask2Former: 0.1).
        **kwargs: :class:`ClustSegHead` arguments except ``loss_cls``.
    """

    def __init__(self, class_loss_weight=2.0, no_object_weight=0.1, **kwargs):
        if 'loss_cls' in kwargs:
            raise KeyError('ClustSegInstanceHead does not take loss_cls: its class loss is the '
                           'sigmoid BCE of the class FFN (class_loss_weight, no_object_weight)')
        if not class_loss_weight > 0 or not no_object_weight >= 0:
            raise ValueError('model.panoptic_head: class_loss_weight must be > 0 and '
                             f'no_object_weight >= 0, got {class_loss_weight}, '
                             f'{no_object_weight}')
        self.class_loss_weight = float(class_loss_weight)
        self.no_object_weight = float(no_object_weight)
        super().__init__(**kwargs)
        if self.num_stuff_classes:
            raise ValueError('ClustSegInstanceHead: num_stuff_classes must be 0 (instance '
                             'segmentation has no stuff queries)')
        del self.cls_embed  # replaced by the class FFN (no parameter outside the loss)
        d = self.decoder.embed_dims
        self.cls_ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True),
                                     nn.Linear(d, self.num_classes))

    def _init_losses(self, loss_cls, loss_mask, loss_dice) -> None:
        self._init_mask_losses(loss_mask, loss_dice)  # no softmax class loss

    def init_weights(self) -> None:
        super().init_weights()
        nn.init.constant_(self.cls_ffn[-1].bias, bias_init_with_prob(0.01))

    def _classify(self, c: Tensor) -> Tensor:
        """Normalised centers B x K x D -> class FFN logits B x K x C (sigmoid)."""
        return self.cls_ffn(c)

    def _loss_by_feat_single(self, cls_scores: Tensor, mask_preds: Tensor, batch_gt_instances,
                             batch_img_metas) -> Tuple[Tensor, Tensor, Tensor]:
        """One E-step: cls_scores B x K x C, mask_preds B x K x H4 x W4 -> (class BCE, mask
        BCE, dice), weighted."""
        b = cls_scores.size(0)
        labels, _, mask_targets, mask_weights, num_masks = self.get_targets(
            [cls_scores[i] for i in range(b)], [mask_preds[i] for i in range(b)],
            batch_gt_instances, batch_img_metas)
        labels = torch.stack(labels)  # B x K, num_classes = no object
        loss_cls = self.class_loss_weight * sigmoid_class_loss(
            cls_scores, labels, no_object_weight=self.no_object_weight)
        num_masks = max(float(reduce_mean(cls_scores.new_tensor([float(num_masks)]))), 1.0)
        preds = mask_preds[torch.stack(mask_weights) > 0]  # N x H4 x W4
        targets = torch.cat(mask_targets)  # N x H x W
        if targets.shape[0] == 0:
            zero = mask_preds.sum() * 0.0
            return loss_cls, zero, zero
        pred_pts, gt_pts = sample_mask_points(preds, targets, self.num_points,
                                              self.oversample_ratio,
                                              self.importance_sample_ratio)
        terms = mask_bce_dice_loss(pred_pts, gt_pts, avg_factor=num_masks,
                                   dice_eps=self.loss_dice.eps)
        return (loss_cls, self.loss_mask.loss_weight * terms['bce'],
                self.loss_dice.loss_weight * terms['dice'])

    def predict(self, x: Tuple[Tensor], batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """-> (class log-probabilities B x K x (C + 1), mask logits B x K x H x W at the padded
        input size) for ``MaskFormerFusionHead``."""
        all_cls, all_masks = self(x, batch_data_samples)
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        masks = F.interpolate(all_masks[-1], size=(h, w), mode='bilinear', align_corners=False)
        with fp32_island(all_cls[-1]):
            score, label = all_cls[-1].float().sigmoid().max(dim=-1)  # B x K
            cls_logp = top1_class_logprobs(label, score, self.num_classes)
        return cls_logp, masks
