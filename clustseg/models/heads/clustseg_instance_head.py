"""ClustSeg's instance head (supplementary A.2): Mask2Former's mask protocol, sigmoid class FFN."""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.structures import SampleList
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor

from clustseg.registry import MODELS
from ..losses import (binary_corner_codes, gather_query_labels, mask_bce_dice_terms, pad_stack,
                      read_binary_points, read_mask_points, sigmoid_class_loss,
                      uncertain_point_coords)
from ..losses.loss_utils import fp32_island
from ..task_modules import fixed_stuff_gt_inds
from ..utils import check_positive_int, host_to_device
from .clustseg_head import (ClustSegHead, HeadOutput, cat_steps, match_chunk,
                            mean_over_ranks, select_steps, stack_e_steps)

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
    points shared by predictions and ground truth; one draw per image and step, shared by its
    E-steps, which are matched after one host transfer, :meth:`_match_image`; the config's
    costs, e.g. ``FocalLossCost`` on these logits + mask BCE + dice), then
    ``class_loss_weight x`` :func:`sigmoid_class_loss` (one-hot targets, all-zero for
    unmatched queries, weighted ``no_object_weight``) and Mask2Former's point-sampled mask
    BCE and dice (:func:`mask_bce_dice_terms` over the E-step's matched masks, normalised as
    mmdet's ``Mask2FormerHead``; ``loss_mask`` / ``loss_dice`` are mmdet loss configs of which
    ``loss_weight`` and the dice ``eps`` take effect; the paper: 5 and 2). The E-steps of a
    decoder level are summed under one key (:meth:`loss_by_feat`).

    Prediction: each class's sigmoid of each query, as log-probabilities for
    :class:`ClassScoreFusionHead` (mmdet's instance protocol over all (query, class) pairs);
    masks are per-query sigmoids.

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
        Mask2Former's matching on ``num_points`` uniform points, one set drawn per image and
        step and shared by its E-steps (Mask2Former draws one per prediction; here every
        E-step's cost is still estimated on ``num_points`` uniform points, so its matching
        has the same distribution, and the GT is read once; each cost term is computed once
        for the E-steps of a chunk stacked as G K predictions, ``MATCH_CHUNK_ELEMENTS``: all
        of them on a GPU, one at a time on the CPU); then the S
        assignments after one host transfer (:func:`fixed_stuff_gt_inds`) -> S x K host
        ``gt_inds`` (0 = unmatched, ``m + 1`` = GT ``m``), what the assigner's ``assign``
        gives for each E-step on those points."""
        s, k = len(cls_scores), cls_scores[0].shape[0]
        m = gt.labels.shape[0]
        if m == 0 or k == 0:
            return torch.zeros(s, k, dtype=torch.long)
        device = cls_scores[0].device
        coords = torch.rand((1, self.num_points, 2), device=device)
        gt_inst = InstanceData(labels=gt.labels, masks=point_sample(
            gt.masks.unsqueeze(1).float(), coords.expand(m, -1, -1)).squeeze(1))  # M x P
        chunk = match_chunk(device, k * self.num_points)
        costs = []
        for j in range(0, s, chunk):
            # the chunk's E-steps as G K predictions: one point read per E-step (a stacked
            # G K x h x w copy would cost more), then each cost term once
            pred_pts = torch.cat([point_sample(x.unsqueeze(1), coords.expand(k, -1, -1))
                                  for x in mask_preds[j:j + chunk]]).squeeze(1)  # G K x P
            costs.append(self.assigner.cost(
                InstanceData(scores=torch.cat(cls_scores[j:j + chunk]), masks=pred_pts),
                gt_inst, dict(query_stuff_classes=query_classes)))  # G K x M
        return fixed_stuff_gt_inds(torch.cat(costs).view(s, k, m), gt.labels, query_classes,
                                   self.assigner.num_things_classes)

    def _step_factors(self, gt_index: Tensor, device) -> Tuple[Tensor, Tensor]:
        """Per supervised E-step (``gt_index`` S x B x K on the host, -1 = unmatched): the
        mask terms' averaging factor (matched queries, averaged over ranks: one all-reduce for
        all E-steps, at least 1, as mmdet's ``Mask2FormerHead``) and the class BCE's
        (:func:`sigmoid_class_loss`'s default: matched queries + ``no_object_weight`` x the
        others, on this rank) -> two S fp32 host tensors."""
        matched = (gt_index >= 0).sum(dim=(1, 2)).float()  # S
        unmatched = gt_index[0].numel() - matched
        return (mean_over_ranks(matched, device),
                (matched + self.no_object_weight * unmatched).clamp(min=1))

    def _group_losses(self, steps: List[int], out: HeadOutput, gt_labels: Tensor,
                      device_index: Tensor, cls_factors: Tensor, inv_mask_factors: Tensor,
                      codes: Tensor, device_pos: Tensor,
                      offsets: List[int]) -> Tuple[Tensor, Tensor, Tensor]:
        """The weighted (class BCE, mask BCE, dice) of the E-steps ``steps`` evaluated
        together, stacked along the batch (G B images, E-step major), each summed over them:
        ``gt_labels`` the padded GT labels (B x M), ``device_index`` the matchings
        (S x B x K, -1 = unmatched), ``cls_factors`` each E-step's class normaliser (S, on
        the device) and 1 / its mask factor (``inv_mask_factors``, S), ``codes`` the
        input-resolution GT's :func:`binary_corner_codes` ((B M) x (H + 1) x (W + 1));
        ``device_pos``: the matched queries of all E-steps (4 x N: image, query, GT code row,
        E-step), E-step ``s``'s at ``offsets[s]:offsets[s + 1]`` (host integers; a group's
        E-steps need not be consecutive). Each query is read with these indices (no device
        read); the points are Mask2Former's uncertainty sampling, one draw for the group's
        matched masks."""
        g, b = len(steps), gt_labels.shape[0]
        cls = cat_steps([out.cls_scores[s] for s in steps])  # G B x K x C
        index = select_steps(device_index, steps).flatten(0, 1)  # G B x K
        labels = gather_query_labels(gt_labels.repeat(g, 1), index, self.num_classes)
        norm = select_steps(cls_factors, steps).repeat_interleave(b)[:, None]  # G B x 1
        loss_cls = self.class_loss_weight * sigmoid_class_loss(
            cls, labels, no_object_weight=self.no_object_weight, avg_factor=norm,
            check_labels=False)
        # the group's matched queries: each E-step's columns (a group's E-steps need not be
        # consecutive, e.g. interleaved layer levels)
        cols = [device_pos[:, offsets[s]:offsets[s + 1]] for s in steps]
        if sum(c.shape[1] for c in cols) == 0:
            zero = sum(out.mask_preds[s].sum() for s in steps) * 0.0
            return loss_cls, zero, zero
        preds = torch.cat([out.mask_preds[s][c[0], c[1]]
                           for s, c in zip(steps, cols)])  # N x h x w
        pos = cat_steps(cols, dim=1)  # 4 x N
        with torch.no_grad(), fp32_island(preds):
            coords = uncertain_point_coords(preds.detach().float().unsqueeze(1),
                                            self.num_points, self.oversample_ratio,
                                            self.importance_sample_ratio)
            gt_pts = read_binary_points(codes, coords, pos[2])
        bce, dice = mask_bce_dice_terms(read_mask_points(preds, coords), gt_pts, self.dice_eps)
        inv = inv_mask_factors[pos[3]]  # N: 1 / each one's E-step's factor
        return (loss_cls, self.mask_loss_weight * (bce * inv).sum(),
                self.dice_loss_weight * (dice * inv).sum())

    def loss_by_feat(self, out: HeadOutput, batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict]) -> dict:
        """Every supervised E-step's losses: the output's unprefixed, the others summed per
        decoder level (``lv{level}.``, :meth:`step_groups`), each term of a group evaluated
        once with its E-steps stacked along the batch on a GPU, one E-step at a time on the
        CPU (``STACK_E_STEPS``; the same keys and values). Each image's E-steps are matched
        together first (:meth:`_match_image`); the matched queries reach the device in one
        transfer."""
        qc = out.core.query_classes
        per_image = [self._match_image([c[b] for c in out.cls_scores],
                                       [m[b] for m in out.mask_preds], g, qc)
                     for b, g in enumerate(batch_gt_instances)]  # B of S x K
        gt_index = torch.stack(per_image, dim=1) - 1  # S x B x K, host, -1 = unmatched
        device = out.cls_scores[0].device
        gt_labels = pad_stack([g.labels.long() for g in batch_gt_instances])  # B x M
        m = gt_labels.shape[1]
        mask_factors, cls_factors = self._step_factors(gt_index, device)
        pos = (gt_index >= 0).nonzero()  # N x 3 (E-step, image, query), E-step major
        offsets = [0] + torch.bincount(pos[:, 0], minlength=len(gt_index)).cumsum(0).tolist()
        rows = pos[:, 1] * m + gt_index[pos[:, 0], pos[:, 1], pos[:, 2]]  # GT code rows
        device_pos = host_to_device(torch.stack([pos[:, 1], pos[:, 2], rows, pos[:, 0]]),
                                    device)  # 4 x N
        device_index = host_to_device(gt_index, device)
        factors = host_to_device(torch.stack([cls_factors, 1.0 / mask_factors]), device)
        codes = binary_corner_codes(self.full_res_targets(batch_gt_instances).flatten(0, 1)) \
            if len(pos) else None
        stack = stack_e_steps(device)
        losses = {}
        names = ('loss_cls', 'loss_mask', 'loss_dice')
        for prefix, group in self.step_groups(out.states, [False] * len(out.states)):
            for steps in ([group] if stack else [[i] for i in group]):
                terms = self._group_losses(steps, out, gt_labels, device_index, factors[0],
                                           factors[1], codes, device_pos, offsets)
                for name, v in zip(names, terms):
                    key = prefix + name
                    losses[key] = losses[key] + v if key in losses else v
        return losses

    def predict(self, x, batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """-> (each class's log-sigmoid B x K x C, mask logits B x K x H x W at the padded
        input size) for :class:`ClassScoreFusionHead`."""
        out = self(x, batch_data_samples)
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        masks = F.interpolate(out.mask_preds[-1], size=(h, w), mode='bilinear',
                              align_corners=False)
        with fp32_island(out.cls_scores[-1]):
            cls_logp = F.logsigmoid(out.cls_scores[-1].float())  # B x K x C
        return cls_logp, masks
