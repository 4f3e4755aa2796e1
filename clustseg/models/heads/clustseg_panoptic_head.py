"""ClustSeg's panoptic head with the paper's loss (supplementary A.1, Eq. 12)."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.structures import SampleList
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from clustseg.registry import MODELS
from ..losses import (binary_corner_codes, gather_log_softmax, gather_matched,
                      gather_query_labels, gather_query_targets, gt_queries, mask_bce_dice_terms,
                      mask_id_cross_entropy, matched_mask_terms, pad_stack,
                      pixelwise_instance_discrimination_loss, pq_style_loss, read_binary_points,
                      read_mask_points, semantic_aux_loss, sigmoid_class_loss,
                      uncertain_point_coords, void_pixels, void_ratio)
from ..losses.loss_utils import fp32_island
from ..task_modules import PQProductCost
from ..utils import check_positive_int, host_to_device, merge_cfg
from .clustseg_head import (ClustSegHead, HeadOutput, cat_steps, gt_mask_tensor,
                            match_chunk, mean_over_ranks, select_steps, stack_e_steps)


#: The floor of the E-step maps' probabilities before their log (:meth:`_e_step_loss`): low
#: enough to keep the exact loss and gradient of a pixel up to a logit gap of about 69 to its
#: GT cluster (1e-8 stopped them at 18), high enough that the backward's g / p stays finite in
#: fp32 under fp16 loss scales up to about 2^40 (with fp32's tiny, 1.2e-38, a scale of 2^24
#: already overflowed)
PROB_FLOOR = 1e-30
LOSS_WEIGHTS = dict(thing=5.0, stuff=3.0, aux=1.0, pq_cls=3.0, pq_mask=3.0, mask_id=0.3,
                    insdis=1.0, sem=1.0, thing_cls=2.0, e_step=0.3)


@MODELS.register_module()
class ClustSegPanopticHead(ClustSegHead):
    """:class:`ClustSegHead` trained with Eq. 12 and classifying things with a sigmoid FFN.

    ``L = w_th (CE + dice)_th + w_st (CE + dice)_st + w_aux (w_pq_cls PQ_cls + w_pq_mask PQ_mask
    + w_mask_id maskID + w_insdis insdis + w_sem sem + w_e_step maskID(M)) + w_thing_cls
    BCE_thing`` (defaults ``LOSS_WEIGHTS``: λ_th 5, λ_st 3, λ_aux 1 from the paper,
    kMaX-DeepLab's COCO weights inside the auxiliary term, 2 for the thing FFN, 0.3 for the
    mask-ID cross-entropy of each E-step's own assignment map ``M``; docs/losses.md says what
    each term is).

    Per supervised E-step (``deep_supervision``), the E-step's assignment map ``M`` (softmax
    over the K clusters at the decoder level's stride, Eq. 10) is supervised by the mask-ID
    cross-entropy against that E-step's matched targets pooled to its resolution (the paper's
    "every E-step is a mask prediction"; it is also what trains the k-means variant's
    projections, whose M-step uses a hard argmax). Hungarian matching of the thing queries with
    ``PQProductCost`` and fixed matching of the memory-bank stuff queries
    (``FixedStuffHungarianAssigner``), then the thing / stuff mask terms (``matched_mask_terms``
    on the softmax over the K clusters), the PQ-style loss and the mask-ID cross-entropy, all
    dense at stride 4. Once per step: pixel instance discrimination on the L2-normalised
    stride-4 mask features, the semantic loss of a 1x1-conv semantic head on the stride-4
    pixel-decoder map, and the thing FFN's BCE on the final thing centers (labels from the
    final matching).

    Prediction: a pixel's mask probability is the softmax over the K clusters of the
    (upsampled) mask logits. A thing query scores each thing class by the thing FFN's sigmoid
    (the paper's "small FFN for semantic classification"); a stuff query scores only its
    memory-bank class, by the softmax class head's probability of that class. Both are handed
    to :class:`ClassScoreFusionHead` as log-probabilities (and the mask probabilities as
    logits): mmdet's panoptic fusion of each query's best class, and its instance protocol
    over (query, class) pairs.

    Args:
        loss_weights (dict): keys of ``LOSS_WEIGHTS`` (others are errors).
        **kwargs: :class:`ClustSegHead` arguments except ``loss_cls`` / ``loss_mask`` /
            ``loss_dice`` (Mask2Former's losses, not used here).
    """

    def __init__(self, loss_weights=None, **kwargs):
        self.loss_weights = merge_cfg(LOSS_WEIGHTS, loss_weights,
                                      'model.panoptic_head.loss_weights')
        super().__init__(**kwargs)
        check_positive_int('model.train_cfg.num_insdis_samples',
                           self.train_cfg['num_insdis_samples'])
        n_pts = self.train_cfg['mask_num_points']
        if not (isinstance(n_pts, int) and n_pts >= 0):
            raise ValueError('model.train_cfg.mask_num_points must be an integer >= 0 (0 = dense), '
                             f'got {n_pts!r}')
        if not isinstance(self.train_cfg['points_ignore_void'], bool):
            raise ValueError('model.train_cfg.points_ignore_void must be True or False, got '
                             f"{self.train_cfg['points_ignore_void']!r}")
        if self.train_cfg['mask_activation'] not in ('softmax', 'sigmoid'):
            raise ValueError("model.train_cfg.mask_activation must be 'softmax' or 'sigmoid', "
                             f"got {self.train_cfg['mask_activation']!r}")
        if not callable(getattr(self.assigner, 'assign_many', None)):
            raise TypeError('model.train_cfg.assigner must match several predictions at once '
                            '(assign_many, e.g. FixedStuffHungarianAssigner), got '
                            f'{type(self.assigner).__name__}')
        costs = [type(c).__name__ for c in self.assigner.match_costs
                 if not isinstance(c, PQProductCost)]
        if costs:
            raise TypeError('model.train_cfg.assigner.match_costs: the head matches all E-steps '
                            'at once, which needs costs that take a leading E-step dimension '
                            f'(PQProductCost); got {costs}')
        d = self.embed_dims
        self.cls_embed = nn.Linear(d, self.num_classes + 1)
        self.thing_cls_ffn = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True),
                                           nn.Linear(d, self.num_things_classes))
        self.sem_head = nn.Conv2d(self.core.out_channels['stride4'], self.num_classes, 1)

    supports_map_steps = True
    supports_point_steps = True

    @property
    def supervise_e_step_maps(self) -> bool:
        return self.loss_weights['e_step'] > 0

    def _classify(self, c: Tensor) -> Tensor:
        """Normalised centers B x K x D -> softmax class logits B x K x (C + 1)."""
        return self.cls_embed(c)

    def init_weights(self) -> None:
        super().init_weights()
        # sigmoid classifier starts at a 1 % prior (as mmdet's bias_init_with_prob), so the
        # summed-over-classes BCE of the thing FFN does not start ~C x log 2
        nn.init.constant_(self.thing_cls_ffn[-1].bias, bias_init_with_prob(0.01))

    def default_train_cfg(self) -> dict:
        """``assigner``; ``num_insdis_samples`` / ``num_sem_samples``: pixels drawn per image
        for instance discrimination / the semantic loss (kMaX: 4096; 0 = all, semantic only);
        ``mask_activation``: ``'softmax'`` over the K clusters (default) or ``'sigmoid'`` for
        the thing / stuff mask terms;
        ``mask_num_points``: 0 = the thing / stuff CE + dice are dense over the stride-4 map
        (void pixels excluded); N > 0 = on N points per matched mask drawn as Mask2Former does
        (3x oversampling, 75 % most uncertain), the probabilities given as logits and the
        targets read from the input-resolution GT masks (sub-cell extent and thin segments);
        ``points_ignore_void``: with N > 0, leave the void points (covered by no GT segment at
        input resolution, padding included) out of those terms, as the dense terms leave out
        void pixels (default False: every point counts, a void point a negative of every
        matched mask, as in Mask2Former).
        Which E-steps are supervised, and how, is ``deep_supervision``'s
        (:class:`DeepSupervision`): with :class:`InnerEStepPoints` the E-steps at points run
        the matching and every mask term (thing / stuff CE + dice, PQ-style, mask-ID) as on a
        P-pixel map; with :class:`InnerEStepMaps` the map-only E-steps get the E-step map term
        (:meth:`_map_step_losses`)."""
        return dict(assigner=dict(type='FixedStuffHungarianAssigner',
                                  num_things_classes=self.num_things_classes,
                                  match_costs=[dict(type='PQProductCost')]),
                    num_insdis_samples=4096, num_sem_samples=4096, mask_activation='softmax',
                    recompute_losses=True, mask_num_points=0, points_ignore_void=False)

    # ------------------------------------------------------------------ targets
    def _stride_targets(self, batch_gt_instances, size) -> Tuple[List[Tensor], List[Tensor]]:
        """mmdet's padded-batch GT masks (things + stuff) -> masks at the prediction size.

        Each stride-4 cell gets the *fraction* of its input pixels that the segment covers
        (area pooling): soft targets centred on the cell, the convention under which
        :meth:`predict` upsamples the mask logits (bilinear, ``align_corners=False``). A nearest
        resize would take the cell's top-left pixel instead, shifting every target by
        (s - 1) / 2 input pixels and losing all sub-cell extent: for the crowded COCO images of
        ``tests/data/coco_panoptic`` even perfect nearest-resized masks reach a mean thing IoU
        of only 0.54-0.61 at the original size, 0.83-0.84 with area pooling."""
        masks, labels = [], []
        for gi in batch_gt_instances:
            m = gt_mask_tensor(gi, torch.float32)
            if m.shape[0] == 0:
                m = m.new_zeros((0, ) + tuple(size))
            elif tuple(m.shape[-2:]) != tuple(size):
                m = F.interpolate(m[None], size=size, mode='area')[0]
            masks.append(m)
            labels.append(gi.labels.long())
        return masks, labels

    @staticmethod
    def _point_targets(full: Tensor, coords: Tensor) -> Tensor:
        """The padded batch's input-resolution GT (:meth:`full_res_targets`, B x M x H x W)
        read at ``coords`` (B x P x 2 in [0, 1]^2, x then y) -> B x M x P x 1 fp32: the input
        pixel under each point."""
        h, w = full.shape[-2:]
        x = (coords[..., 0] * w).long().clamp_(0, w - 1)  # B x P
        y = (coords[..., 1] * h).long().clamp_(0, h - 1)
        b = torch.arange(full.shape[0], device=full.device)[:, None]
        return full[b, :, y, x].permute(0, 2, 1).float().unsqueeze(-1)  # B x M x P x 1

    @staticmethod
    def _pooled_targets(gt: Tensor, hw, cache: dict) -> Tensor:
        """The padded stride-4 GT masks (B x M x H4 x W4) area-pooled to a decoder level
        ``hw`` (B x M x h x w), computed once per level per step (``cache``)."""
        hw = tuple(hw)
        if hw not in cache:
            cache[hw] = F.interpolate(gt, size=hw, mode='area')
        return cache[hw]

    def _assign_steps(self, cls_list: List[Tensor], masks_list: List[Tensor],
                      gts: List[Tensor], gt_labels: List[Tensor], qsc: Tensor) -> Tensor:
        """The Hungarian matching of several E-steps at once: their class logits B x K x C'
        and masks B x K x ... (one shape for all), the per-image GT ``gts`` (M_b x ...).
        Per image, the E-steps' costs are computed together and matched on the host after
        one transfer (``FixedStuffHungarianAssigner.assign_many``), in chunks of at most
        ``MATCH_CHUNK_ELEMENTS[device type]`` mask values (:func:`match_chunk`). Returns
        S x B x K ``gt_index`` on the CPU (-1 = unmatched), what matching each E-step alone
        gives."""
        s, (b, k) = len(cls_list), cls_list[0].shape[:2]
        chunk = match_chunk(masks_list[0].device, masks_list[0][0].numel())
        out = torch.empty(s, b, k, dtype=torch.long)
        for i in range(b):
            gt = InstanceData(labels=gt_labels[i], masks=gts[i])
            for j in range(0, s, chunk):
                # one E-step is a view, not a copy
                scores, masks = ((torch.stack([x[i].detach() for x in xs[j:j + chunk]])
                                  if chunk > 1 else xs[j][i].detach()[None])
                                 for xs in (cls_list, masks_list))
                out[j:j + chunk, i] = self.assigner.assign_many(scores, masks, gt, qsc)
        return out - 1

    @staticmethod
    def _avg_factors(gt_index: Tensor, thing_host: Tensor, device) -> Tensor:
        """Per E-step (``gt_index`` S x B x K on the host; ``thing_host`` K), the thing and
        stuff averaging factors: matched queries of each group, averaged over ranks (one
        all-reduce for all E-steps under DDP, on ``device``), at least 1: S x 2 fp32 on the
        host."""
        matched = gt_index >= 0
        th = thing_host[None, None]
        counts = torch.stack([(matched & th).sum(dim=(1, 2)), (matched & ~th).sum(dim=(1, 2))],
                             dim=1).float()  # S x 2
        return mean_over_ranks(counts, device)

    def _group_losses(self, steps: List[int], out: HeadOutput, at_points: bool, pt, gt, labels,
                      codes, labelled, thing_q, factors, device_index, device_rows, host_rows,
                      pooled) -> Dict[str, Tensor]:
        """The weighted terms of the E-steps ``steps`` evaluated together
        (:meth:`_step_draws`, then :meth:`_step_losses`, recomputed in backward with
        ``recompute_losses``), each summed over them."""
        i = steps[0]
        step_gt = (pt if at_points else gt).flatten(2)  # B x M x N, shared by the E-steps
        hw = out.states[i]['hw']
        probs = [out.states[s]['probs'] for s in steps] if self.supervise_e_step_maps else None
        e_pooled = self._pooled_targets(gt, hw, pooled) if self.supervise_e_step_maps else None
        # G B x ..., E-step major (one E-step: a view)
        index, rows, h_rows = (select_steps(x, steps).flatten(0, 1)
                               for x in (device_index, device_rows, host_rows))
        masks = [out.mask_preds[s] for s in steps]
        # no gradient, once (not again when the loss is recomputed in backward): the
        # unmatched queries' void ratios and the point-sampled terms' points
        lse, ratios, points = self._step_draws(masks, rows, h_rows, step_gt, codes, labelled,
                                               at_points)
        args = ([out.cls_scores[s] for s in steps], masks, probs, hw, index, rows, step_gt,
                labels, thing_q, select_steps(factors, steps), lse, ratios, points, e_pooled,
                at_points)
        if self.train_cfg['recompute_losses']:  # keep only the inputs for backward
            return checkpoint(self._step_losses, *args, use_reentrant=False)
        return self._step_losses(*args)

    # ------------------------------------------------------------------ losses
    def loss_by_feat(self, out: HeadOutput, batch_gt_instances,
                     batch_img_metas) -> Dict[str, Tensor]:
        """``out.cls_scores``: per supervised E-step B x K x (C + 1); ``out.mask_preds``: per
        E-step B x K x H/4 x W/4 (last = final). GT masks come padded to the batch shape.

        Every E-step is matched before any loss, the dense ones together and the
        point-supervised ones together (:meth:`_assign_steps`). The losses are then summed per
        group of E-steps (:meth:`step_groups`: a decoder level's), evaluated stacked along
        the batch, each term once for the group, or one E-step at a time (``STACK_E_STEPS``,
        :meth:`_group_losses`). The mask terms read one row per GT segment, its matched
        query's map, gathered inside the (recomputed) loss, so that no per-step target tensor
        is kept until backward and the loop needs no host read of the matching (the loss
        terms' own selections still read the device once or twice per evaluation)."""
        all_cls_scores, all_mask_preds = out.cls_scores, out.mask_preds
        qsc = out.core.query_classes  # K: -1 = thing query, else the stuff query's class
        size = tuple(all_mask_preds[-1].shape[-2:])
        gt_masks, gt_labels = self._stride_targets(batch_gt_instances, size)
        gt = pad_stack(gt_masks)  # B x M x H4 x W4
        labels = pad_stack(gt_labels)  # B x M
        at_points = out.at_points  # per E-step: predicted at sampled points only
        # input-resolution GT, converted once for the point-sampled terms and the points of
        # the point-supervised E-steps
        full = self.full_res_targets(batch_gt_instances) \
            if self.train_cfg['mask_num_points'] > 0 or any(at_points) else None
        pt = self._point_targets(full, out.point_coords) if any(at_points) else None
        codes = binary_corner_codes(full.flatten(0, 1)) \
            if self.train_cfg['mask_num_points'] > 0 else None
        # the non-void pixels at input resolution (covered by a GT segment), B x H x W as codes
        labelled = binary_corner_codes(full.any(dim=1)) \
            if codes is not None and self.train_cfg['points_ignore_void'] else None
        thing_q = qsc < 0  # K
        n = len(all_cls_scores)
        gt_index = [None] * n  # per E-step, B x K on the CPU
        for group, gts in ((False, gt_masks), (True, None)):
            steps = [i for i in range(n) if at_points[i] == group]
            if not steps:
                continue
            if group:  # the point-supervised E-steps' GT: M_b x P x 1 per image
                gts = [pt[b, :lb.numel()] for b, lb in enumerate(gt_labels)]
            idx = self._assign_steps([all_cls_scores[i] for i in steps],
                                     [all_mask_preds[i] for i in steps], gts, gt_labels, qsc)
            for i, g in zip(steps, idx):
                gt_index[i] = g
        thing_host = thing_q.cpu()
        host_index = torch.stack(gt_index)  # S x B x K
        # the matched query of each GT segment: the mask terms read one row per segment
        host_rows = gt_queries(host_index, gt.shape[1])  # S x B x M
        factors = host_to_device(self._avg_factors(host_index, thing_host, thing_q.device),
                             thing_q.device)  # S x 2
        device_index = host_to_device(host_index, thing_q.device)
        device_rows = host_to_device(host_rows, thing_q.device)
        losses, pooled = {}, {}
        stack = stack_e_steps(thing_q.device)
        for prefix, group in self.step_groups(out.states, at_points):
            # a group's E-steps at once, stacked along the batch (G B images, E-step major):
            # one evaluation of each term instead of G; or one E-step at a time (CPU). Each
            # key is the sum of its term over the group. An inner E-step's masks (at_points)
            # are B x K x P x 1, matched and supervised as a P-pixel map
            for steps in ([group] if stack else [[i] for i in group]):
                terms = self._group_losses(steps, out, at_points[steps[0]], pt, gt, labels,
                                           codes, labelled, thing_q, factors, device_index,
                                           device_rows, host_rows, pooled)
                for k, v in terms.items():
                    losses[prefix + k] = losses[prefix + k] + v if prefix + k in losses else v
        if out.map_states:
            losses.update(self._map_step_losses(out, gt, device_rows, pooled))
        final = gather_query_targets(gt, labels, device_index[-1], self.num_classes)
        losses.update(self._once_per_step_losses(out, gt_masks, gt_labels, final))
        return losses

    def _map_step_losses(self, out: HeadOutput, gt: Tensor, rows: Tensor,
                         pooled: dict) -> Dict[str, Tensor]:
        """The E-step map term of the E-steps that predict nothing (``InnerEStepMaps``)
        (``out.map_states``), each matched as its layer's last E-step (``rows``: S x B x M,
        the predicting E-steps' matched query of each GT segment), summed per decoder level
        under ``lv{level}.maps.loss_e_step_mask_id`` (the level's E-steps stacked along the
        batch, as in :meth:`_step_losses`)."""
        w = self.loss_weights
        row_of = {s['layer']: rows[i] for i, s in enumerate(out.states)}
        levels = {}
        for s in out.map_states:
            levels.setdefault(s['level'], []).append(s)
        losses = {}
        for lv, group in levels.items():
            hw = group[0]['hw']
            r = cat_steps([row_of[s['layer']] for s in group])  # G B x M
            probs = cat_steps([s['probs'] for s in group])  # G B x K x h*w
            losses[f'lv{lv}.maps.loss_e_step_mask_id'] = \
                w['aux'] * w['e_step'] * len(group) * self._e_step_loss(
                    probs, hw, r, self._pooled_targets(gt, hw, pooled))
        return losses

    @staticmethod
    def _row_maps(masks: Tensor, rows: Tensor, act: str, lse: Tensor) -> Tuple[Tensor, Tensor]:
        """An E-step's mask logits B x K x ... -> (``lp``: each GT segment's matched query's
        log-softmax over K, B x M x N fp32, zero where ``rows`` (B x M) is -1,
        :func:`gather_log_softmax` with the logits' logsumexp ``lse`` (B x N); ``x``: the map
        the thing / stuff terms read, ``lp`` or the raw logit for the sigmoid activation)."""
        with fp32_island(masks):
            flat = masks.float().flatten(2)
            lp = gather_log_softmax(flat, rows, lse)
            return lp, (lp if act == 'softmax' else gather_matched(flat, rows))

    def _step_draws(self, masks: List[Tensor], rows: Tensor, host_rows: Tensor, gt: Tensor,
                    codes: Optional[Tensor], labelled: Optional[Tensor], dense: bool):
        """What a group of G E-steps' loss needs that is drawn or detached, computed once
        outside the recomputed loss. ``masks``: the G E-steps' mask logits (B x K x ... each),
        stacked here along the batch (G B images, E-step major; ``rows`` / ``host_rows``
        likewise). Returns the logits' logsumexp over K (G B x N, the normaliser of
        :meth:`_row_maps`), the queries' void ratios (G B x K, :func:`void_ratio`) and
        ``(coords N x P x 2, gt_points N x P, keep)`` of Mask2Former's uncertainty sampling on
        the detached point logits of the N matched GT segments, things and stuff together, or
        None (no matched segment, or dense terms: ``dense`` or ``mask_num_points == 0``);
        ``keep``: N x P bool, the non-void points (``points_ignore_void``), or None.

        ``rows`` / ``host_rows``: the query matched to each GT segment (G B x M, -1 = none) on
        the device and on the host, so that the selection needs no sync; ``gt``: the padded GT
        the E-steps are matched to (B x M x N); ``codes``: the input-resolution GT
        B x M x H x W as (B x M) x (H + 1) x (W + 1) :func:`binary_corner_codes`, read at the
        points (:func:`read_binary_points`); ``labelled``: the images' non-void pixels at input
        resolution, B x (H + 1) x (W + 1) codes, or None. The N segments are in (image,
        segment) order over the G B images, as a boolean selection gives."""
        act = self.train_cfg['mask_activation']
        b, m = gt.shape[:2]
        with torch.no_grad(), fp32_island(masks[0]):
            stacked = cat_steps(masks)
            flat = stacked.float().flatten(2)  # G B x K x N
            log_p = flat.log_softmax(dim=1)
            # the logsumexp, read off one query (half the time of logsumexp on CPU)
            lse = flat[:, 0] - log_p[:, 0]  # G B x N
            # non-void: covered by a matched segment (unmatched segments are void)
            t = self._group_targets(gt, rows)
            # the probabilities overwrite the log-softmax: one K-wide temporary
            ratios = void_ratio(log_p.exp_(), ~void_pixels(t))
            del log_p, t
            n_pts = self.train_cfg['mask_num_points']
            if dense or n_pts == 0:
                return lse, ratios, None
            gb, mm = (host_rows >= 0).nonzero(as_tuple=True)
            if gb.numel() == 0:
                return lse, ratios, None
            x = self._row_maps(stacked, rows, act, lse)[1]
            h4, w4 = stacked.shape[-2:]
            ix = host_to_device(torch.stack([gb, mm]), stacked.device)
            logits = self._point_logits(x[ix[0], ix[1]].view(-1, h4, w4), act)
            coords = uncertain_point_coords(logits.unsqueeze(1), n_pts)
            # the GT of image (g B + b) is image b's
            image = ix[0] % b
            keep = None if labelled is None else \
                read_binary_points(labelled, coords, image) > 0.5
            return lse, ratios, (coords, read_binary_points(codes, coords, image * m + ix[1]),
                                 keep)

    @staticmethod
    def _group_targets(gt: Tensor, rows: Tensor) -> Tensor:
        """The padded GT ``gt`` (B x M x ...) of a group's G E-steps, each E-step's unmatched
        segments zeroed (void): G B x M x ... fp32, ``rows`` (G B x M) the matched queries."""
        b, m = gt.shape[:2]
        keep = (rows >= 0).view((-1, b, m) + (1, ) * (gt.dim() - 2))  # G x B x M x 1...
        return (gt.float()[None] * keep).flatten(0, 1)

    @staticmethod
    def _point_logits(x: Tensor, act: str) -> Tensor:
        """Selected segments' maps (``_row_maps``' ``x``) -> the mask logits the point-sampled
        terms read: the logit of the softmax-over-K probability (from its log) or the raw
        logit (sigmoid activation)."""
        if act != 'softmax':
            return x
        lp = x.clamp(max=-1e-7)
        return lp - torch.log(-torch.expm1(lp))

    def _step_losses(self, cls, masks, probs, hw, gt_index, rows, gt, labels, thing_q, factors,
                     lse, ratios, points=None, e_pooled=None,
                     dense=False) -> Dict[str, Tensor]:
        """The weighted Eq. 12 terms of a group of G supervised E-steps, each term summed over
        them (a pure function of its arguments, so it can be recomputed in backward).
        ``cls`` / ``masks`` / ``probs``: the G E-steps' class logits, mask logits and E-step
        maps (lists; ``probs`` None: no E-step term), stacked here along the batch (G B
        images, E-step major), so that each term is evaluated once for the group: the
        batch-averaged terms (PQ-style, mask-ID) average over the G B images and are scaled
        by G, the thing / stuff terms divide each segment's terms by its E-step's factor.
        ``gt_index``: the matchings (G B x K, -1 = unmatched) into the padded GT ``gt``
        (B x M x N, the E-steps' resolution, shared) and ``labels`` (B x M); ``rows``: the
        inverse (G B x M, :func:`gt_queries`). The mask terms read one row per GT segment,
        the map of its matched query (:meth:`_row_maps` with the logsumexp ``lse`` of
        :meth:`_step_draws`), so no K-wide tensor is formed in forward (the row form of
        :func:`pq_style_loss`, with the void ratios ``ratios`` of :meth:`_step_draws`);
        ``thing_q``: K, the thing queries; ``factors``: G x 2, each E-step's thing and stuff
        averaging factors; ``points``: the matched segments' sampled points
        (:meth:`_step_draws`); ``e_pooled``: the GT pooled to the E-step maps' level
        (:meth:`_pooled_targets`); ``dense``: the thing / stuff terms over every pixel of
        ``masks`` (a point-supervised E-step's P x 1 map) whatever ``mask_num_points``
        says."""
        w = self.loss_weights
        aux = w['aux']
        act = self.train_cfg['mask_activation']
        g = len(masks)
        cls = cat_steps(cls)  # G B x K x C'
        masks = cat_steps(masks)  # G B x K x ...
        matched = gt_index >= 0  # G B x K
        q_labels = gather_query_labels(labels.repeat(g, 1), gt_index, self.num_classes)
        has_query = rows >= 0  # G B x M
        t = self._group_targets(gt, rows)  # G B x M x N, unmatched segments: void
        lp, x = self._row_maps(masks, rows, act, lse)  # G B x M x N
        is_thing = has_query & thing_q[rows.clamp(min=0)]  # G B x M
        b = gt.shape[0]
        if dense or self.train_cfg['mask_num_points'] == 0:
            th, st = self._dense_mask_losses(x, t, has_query, is_thing, act, factors, b)
        else:
            th, st = self._point_mask_losses(x, masks.shape[-2:], has_query, is_thing, act,
                                             factors, b, points)
        pq = pq_style_loss(cls, lp, t, q_labels, matched, log_probs=True, row_query=rows,
                           void_ratios=ratios, check_labels=False)
        mask_id = mask_id_cross_entropy(lp, t, log_probs=True)
        out = dict(loss_th_ce=w['thing'] * th['ce'], loss_th_dice=w['thing'] * th['dice'],
                   loss_st_ce=w['stuff'] * st['ce'], loss_st_dice=w['stuff'] * st['dice'],
                   loss_pq_cls=aux * w['pq_cls'] * g * pq['cls'],
                   loss_pq_mask=aux * w['pq_mask'] * g * pq['mask'],
                   loss_mask_id=aux * w['mask_id'] * g * mask_id)
        if probs is not None:
            out['loss_e_step_mask_id'] = aux * w['e_step'] * g * self._e_step_loss(
                cat_steps(probs), hw, rows, e_pooled)
        return out

    @staticmethod
    def _group_sums(ce: Tensor, dice: Tensor, thing: Tensor, image: Tensor, factors: Tensor,
                    b: int) -> Tuple[dict, dict]:
        """Per selected segment CE and dice (N each), whether it is a thing (N bool) and its
        image in the group's G B (N) -> the thing and the stuff terms: each segment's terms
        over its E-step's averaging factor (``factors`` G x 2: things, stuff), summed per
        group."""
        f = factors.to(ce.dtype)[image // b]  # N x 2
        th = thing.to(ce.dtype)  # N: 1 = thing
        w_th, w_st = th / f[:, 0], (1.0 - th) / f[:, 1]
        return (dict(ce=(ce * w_th).sum(), dice=(dice * w_th).sum()),
                dict(ce=(ce * w_st).sum(), dice=(dice * w_st).sum()))

    @classmethod
    def _dense_mask_losses(cls, x: Tensor, t: Tensor, has_query: Tensor, is_thing: Tensor,
                           act: str, factors: Tensor, b: int) -> Tuple[dict, dict]:
        """The thing and the stuff CE + dice, dense over the map: ``x`` / ``t`` G B x M x N,
        each GT segment's matched query's map (``_row_maps``: log-softmax over K or raw logit)
        and its target; every matched segment's terms in one :func:`matched_mask_terms` (one
        selection, one void map), then summed per group (``is_thing`` G B x M,
        :meth:`_group_sums`)."""
        idx, ce, dice = matched_mask_terms(x, t, has_query, activation=act,
                                           log_probs=x if act == 'softmax' else None)
        return cls._group_sums(ce, dice, is_thing[idx], idx[0], factors, b)

    def _point_mask_losses(self, x: Tensor, hw, has_query: Tensor, is_thing: Tensor, act: str,
                           factors: Tensor, b: int, points) -> Tuple[dict, dict]:
        """The thing and the stuff CE + dice on the sampled points: ``x`` the matched
        queries' maps of the GT segments (``_row_maps``, G B x M x h*w with ``hw`` = (h, w)),
        ``points`` the matched segments' ``(coords, gt_points)`` from :meth:`_step_draws`
        (None: no matched segment); every matched segment's terms at once
        (:func:`mask_bce_dice_terms`), then summed per group (:meth:`_group_sums`)."""
        if points is None:
            zero = x.sum() * 0.0
            return dict(ce=zero, dice=zero), dict(ce=zero, dice=zero)
        idx = has_query.nonzero(as_tuple=True)  # (image, segment): one host sync
        with fp32_island(x):
            pred = self._point_logits(x[idx], act).view(-1, *hw)  # N x h x w
            coords, gt_pts, keep = points
            ce, dice = mask_bce_dice_terms(read_mask_points(pred, coords), gt_pts, keep=keep)
        return self._group_sums(ce, dice, is_thing[idx], idx[0], factors, b)

    @classmethod
    def _e_step_loss(cls, probs: Tensor, hw, rows: Tensor, level_targets: Tensor) -> Tensor:
        """Mask-ID CE of E-step assignment maps ``M`` (G B x K x h*w, softmax over K, zero on
        padding; G E-steps stacked along the batch) against the matched stride-4 targets
        area-pooled to ``h x w`` (``level_targets``, the padded GT B x M x h x w of
        :meth:`_pooled_targets`), one row per GT segment (``rows``, G B x M: its matched
        query, -1 = none); averaged over the G B images."""
        h, w = hw
        gb, m = rows.shape
        with fp32_island(probs):
            # floored (PROB_FLOOR) far below 1e-8, which gave a pixel confidently in the wrong
            # cluster (gap > 18 in the logits, 0.2-14 % of a trained model's E-step maps) a
            # constant loss and no gradient; the exact zeros of padding and unmatched rows
            # reach the floor
            log_m = gather_matched(probs.float(), rows).clamp(min=PROB_FLOOR).log()
            log_m = log_m.view(gb, m, h, w)
            return mask_id_cross_entropy(log_m, cls._group_targets(level_targets, rows),
                                         log_probs=True)

    @staticmethod
    def _semantic_map(seg: Tensor, labels: Tensor) -> Tensor:
        """Binary GT masks B x M x H x W (zero-padded over M) and their classes B x M -> B x H x
        W int64: each pixel's class is that of the last segment covering it (255: none), in a
        few operators for the batch instead of one masked write per segment."""
        b, m, h, w = seg.shape
        order = torch.arange(1, m + 1, device=seg.device)[None, :, None, None]
        last = (seg.bool() * order).amax(dim=1).flatten(1)  # B x HW, 1-based, 0 = none
        return torch.where(last > 0, labels.gather(1, (last - 1).clamp(min=0)),
                           torch.full_like(last, 255)).view(b, h, w)

    def _once_per_step_losses(self, out: HeadOutput, gt_masks, gt_labels,
                              final) -> Dict[str, Tensor]:
        """Instance discrimination, semantic loss and the thing FFN's BCE (final E-step)."""
        w = self.loss_weights
        b = len(gt_masks)
        h, wd = gt_masks[0].shape[-2:]
        # B x M x H4 x W4, zero-padded over M; binary for the pixel-level terms
        seg = pad_stack([(m > 0.5).to(m.dtype) for m in gt_masks])
        sem = self._semantic_map(seg, pad_stack([lb.long() for lb in gt_labels]))
        with fp32_island(out.mask_feats):
            f = F.normalize(out.mask_feats.float(), dim=1)  # B x E x H4 x W4
            insdis = pixelwise_instance_discrimination_loss(
                f, seg, num_samples=self.train_cfg['num_insdis_samples'])
        sem_logits = self.sem_head(out.core.pyramid['stride4'])  # B x C x H4 x W4
        sem_loss = semantic_aux_loss(sem_logits, sem,
                                     num_samples=self.train_cfg['num_sem_samples'],
                                     gt_masks=seg)
        thing_q = out.core.query_classes < 0
        logits = self.thing_cls_ffn(out.centers[-1][:, thing_q])  # B x Kth x C_th
        # a thing class, or C_th = none (unmatched, or a stuff segment: from the matching,
        # so in range and the check's device read is skipped)
        labels = final.labels[:, thing_q].clamp(max=self.num_things_classes)
        return dict(loss_insdis=w['aux'] * w['insdis'] * insdis,
                    loss_sem=w['aux'] * w['sem'] * sem_loss,
                    loss_thing_cls=w['thing_cls'] * sigmoid_class_loss(logits, labels,
                                                                        check_labels=False))

    # ------------------------------------------------------------------ inference
    def predict(self, x: Tuple[Tensor], batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """-> (each class's log-probability B x K x C, mask logits B x K x H x W at the padded
        input size) for :class:`ClassScoreFusionHead`: its exp / sigmoid then give back the
        class scores described in the class docstring and the softmax-over-K masks."""
        out = self(x, batch_data_samples)
        all_cls, all_masks = out.cls_scores, out.mask_preds
        centers = out.centers[-1]  # B x K x D, normalised
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        masks = F.interpolate(all_masks[-1], size=(h, w), mode='bilinear', align_corners=False)
        thing_q = out.core.query_classes < 0
        # the thing FFN under the caller's autocast (its input may be bf16), its sigmoid in fp32
        th_logits = self.thing_cls_ffn(centers[:, thing_q])
        with fp32_island(masks):
            # the softmax over K and its logit, in place (inference only: not differentiable):
            # two full-size B x K x H x W tensors at the peak (the upsampled logits and the
            # softmax), not five
            mask_logits = masks.float().softmax(dim=1)
            mask_logits.clamp_(1e-6, 1 - 1e-6).logit_()  # log p - log(1 - p)
            cls = all_cls[-1].float()
            b, k, _ = cls.shape
            qc = out.core.query_classes  # K: -1 = thing query, else the stuff query's class
            cls_logp = cls.new_full((b, k, self.num_classes), float('-inf'))  # B x K x C
            # stuff query: its own class, scored by the softmax class head (a thing query's
            # entry here, class 0, is overwritten below)
            own = qc.clamp(min=0)[None, :, None].expand(b, k, 1)  # B x K x 1
            cls_logp.scatter_(2, own, cls.log_softmax(dim=-1).gather(2, own))
            # thing query: every thing class, scored by the thing FFN's sigmoid
            cls_logp[:, thing_q, :self.num_things_classes] = F.logsigmoid(th_logits.float())
        return cls_logp, mask_logits
