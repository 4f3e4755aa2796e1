"""ClustSeg's mask-classification head for mmdet's MaskFormer family (panoptic / instance)."""
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.registry import TASK_UTILS
from mmdet.structures import SampleList
from mmengine.model import BaseModule
from torch import Tensor

from clustseg.registry import MODELS
from ..utils import StepRandom, check_positive_int, merge_cfg

SUPERVISION = ('all', 'layer', 'final')


def top1_class_logprobs(label: Tensor, score: Tensor, num_classes: int) -> Tensor:
    """One class per query -> the input ``MaskFormerFusionHead`` expects.

    label, score: ``B x K`` (class index, probability in [0, 1]) -> ``B x K x (C + 1)``
    log-probabilities with ``score`` on ``label``, ``1 - score`` on no-object (last column)
    and ~0 elsewhere, so the fusion head's softmax gives that distribution back.
    """
    dist = score.new_zeros(*label.shape, num_classes + 1)
    dist.scatter_(2, label[..., None], score[..., None])
    dist[..., -1] = 1.0 - score
    return dist.clamp(min=1e-8).log()


@MODELS.register_module()
class ClustSegHead(Mask2FormerHead):
    """backbone levels -> ``AxialPixelDecoder`` -> dreamy start -> ``ClusterDecoder`` ->
    a (class, mask) prediction after every E-step.

    Predictions: ``cls = Linear(LN(C))`` over ``num_classes + 1`` (last = no object) and
    ``mask = <MLP(LN(C)), P_4>`` with ``P_4`` the stride-4 pixel-decoder map projected to
    ``mask_dims`` (fp32). Matching and the Mask2Former-protocol losses (class CE with a
    no-object weight, point-sampled mask BCE and dice, Hungarian matching through mmdet's
    assigner / cost registry) are mmdet's ``Mask2FormerHead``'s, as is ``predict``. Stuff queries
    tied to a class (``query_classes`` of the initializer, e.g. memory-bank stuff centers) are
    matched to that class's segment by ``FixedStuffHungarianAssigner``.

    Every E-step of every layer is supervised with ``deep_supervision='all'`` (``'layer'``: the
    last E-step of each layer, the paper's "only final E-step of each recurrent
    cross-attention" row of Table 7a; ``'final'``: only the output). At test time one
    prediction is computed: the output's, or with ``test_iter=t`` the one after E/M round ``t``
    (0-based) of the last decoder layer (Table 7b; the last round is the output).

    Training-time random draws (mmdet's point sampling uses torch's global RNG) run inside a
    ``torch.random.fork_rng`` seeded from a checkpointed :class:`StepRandom`, so a resumed run
    draws the same points; the memory bank (if any) is updated from ground truth on every rank
    every training iteration.

    Args:
        num_things_classes, num_stuff_classes (int): as in mmdet.
        pixel_decoder, initializer, decoder (dict): ClustSeg module configs.
        mask_dims (int): E, channels of the mask embedding.
        init_level (int): pixel-decoder level (0..3 = strides 32..4) the initializer reads.
        deep_supervision (str): 'all' | 'layer' | 'final'.
        test_iter (int, optional): E/M round of the last layer that predicts at test time
            (default: the last, i.e. the decoder's output).
        loss_cls, loss_mask, loss_dice (dict): mmdet loss configs.
        train_cfg: ``assigner``, ``sampler``, ``num_points``, ``oversample_ratio``,
            ``importance_sample_ratio`` (mmdet's Mask2Former keys; others are errors).
        test_cfg: the MaskFormerFusionHead keys (``object_mask_thr``, ``iou_thr``,
            ``filter_low_score``, ``max_per_image``, ``panoptic_on``, ``semantic_on``,
            ``instance_on``; others are errors).
    """

    def __init__(self, num_things_classes=80, num_stuff_classes=53, pixel_decoder=None,
                 initializer=None, decoder=None, mask_dims=256, init_level=1,
                 deep_supervision='all', test_iter=None,
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                               reduction='mean', class_weight=[1.0] * 133 + [0.1]),
                 loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                                loss_weight=5.0),
                 loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True,
                                reduction='mean', naive_dice=True, eps=1.0, loss_weight=5.0),
                 train_cfg=None, test_cfg=None, init_cfg=None, **kwargs):
        BaseModule.__init__(self, init_cfg)  # Mask2FormerHead.__init__ builds its own decoder
        if kwargs:
            raise KeyError(f'ClustSegHead got unknown argument(s) {sorted(kwargs)}')
        if deep_supervision not in SUPERVISION:
            raise ValueError(f'deep_supervision={deep_supervision!r}; allowed: {SUPERVISION}')
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.pixel_decoder = MODELS.build(pixel_decoder)
        self.initializer = MODELS.build(initializer)
        self.decoder = MODELS.build(decoder)
        self.num_queries = self.initializer.num_queries
        self.init_level = init_level
        self.deep_supervision = deep_supervision
        if test_iter is not None and not 0 <= test_iter < self.decoder.num_iters:
            raise ValueError(f'model.panoptic_head.test_iter={test_iter!r} must be one of the '
                             f'last layer\'s rounds 0..{self.decoder.num_iters - 1}')
        self.test_iter = test_iter
        d = self.decoder.embed_dims
        self.out_norm = nn.LayerNorm(d)
        self.cls_embed = nn.Linear(d, self.num_classes + 1)
        self.mask_embed = nn.Sequential(nn.Linear(d, d), nn.ReLU(inplace=True), nn.Linear(d, d),
                                        nn.ReLU(inplace=True), nn.Linear(d, mask_dims))
        self.mask_proj = nn.Conv2d(self.pixel_decoder.out_channels[3], mask_dims, 1)
        self.rng = StepRandom()

        # the MaskFormerFusionHead reads these (with the same defaults); a typo is an error
        self.test_cfg = merge_cfg(
            dict(object_mask_thr=0.8, iou_thr=0.8, filter_low_score=False, max_per_image=100,
                 panoptic_on=True, semantic_on=False, instance_on=False), test_cfg,
            'model.test_cfg')
        check_positive_int('model.test_cfg.max_per_image', self.test_cfg['max_per_image'])
        self.train_cfg = merge_cfg(self.default_train_cfg(), train_cfg, 'model.train_cfg')
        self.assigner = TASK_UTILS.build(self.train_cfg['assigner'])
        self._init_losses(loss_cls, loss_mask, loss_dice)

    #: whether training asks the decoder for every E-step's assignment map ``M`` (a subclass
    #: whose loss supervises them sets this)
    supervise_e_step_maps = False

    def default_train_cfg(self) -> dict:
        """The allowed ``train_cfg`` keys with their defaults (mmdet's Mask2Former ones)."""
        return dict(assigner=dict(type='FixedStuffHungarianAssigner',
                                  num_things_classes=self.num_things_classes, match_costs=[
                                      dict(type='ClassificationCost', weight=2.0),
                                      dict(type='CrossEntropyLossCost', weight=5.0,
                                           use_sigmoid=True),
                                      dict(type='DiceCost', weight=5.0, pred_act=True,
                                           eps=1.0)]),
                    sampler=dict(type='MaskPseudoSampler'), num_points=12544,
                    oversample_ratio=3.0, importance_sample_ratio=0.75)

    def _init_mask_losses(self, loss_mask, loss_dice) -> None:
        """Mask2Former's point sampling (sampler, point counts) and mask BCE / dice."""
        self.sampler = TASK_UTILS.build(self.train_cfg['sampler'], default_args=dict(context=self))
        check_positive_int('model.train_cfg.num_points', self.train_cfg['num_points'])
        self.num_points = self.train_cfg['num_points']
        self.oversample_ratio = self.train_cfg['oversample_ratio']
        self.importance_sample_ratio = self.train_cfg['importance_sample_ratio']
        self.loss_mask = MODELS.build(loss_mask)
        self.loss_dice = MODELS.build(loss_dice)

    def _init_losses(self, loss_cls, loss_mask, loss_dice) -> None:
        """Mask2Former protocol: point sampling, class CE with a no-object weight, BCE, dice."""
        self._init_mask_losses(loss_mask, loss_dice)
        self.class_weight = loss_cls['class_weight']
        if len(self.class_weight) != self.num_classes + 1:
            raise ValueError(f'loss_cls.class_weight must have num_classes + 1 = '
                             f'{self.num_classes + 1} entries, got {len(self.class_weight)}')
        self.loss_cls = MODELS.build(loss_cls)

    def init_weights(self) -> None:
        BaseModule.init_weights(self)

    # ------------------------------------------------------------------ forward
    @staticmethod
    def pad_mask(batch_data_samples: SampleList, device) -> Tensor:
        """B x H x W bool, True where the batch padded an image (from the img_shape metas)."""
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        mask = torch.ones(len(batch_data_samples), h, w, dtype=torch.bool, device=device)
        for i, ds in enumerate(batch_data_samples):
            ih, iw = ds.metainfo['img_shape'][:2]
            mask[i, :ih, :iw] = False
        return mask

    def _predict(self, centers: Tensor, mask_feats: Tensor) -> Tuple[Tensor, Tensor]:
        """centers B x K x D -> (cls B x K x (C+1), masks B x K x H4 x W4)."""
        c = self.out_norm(centers)
        embed = self.mask_embed(c)  # B x K x E, under the caller's autocast
        with torch.autocast(device_type=c.device.type, enabled=False):  # fp32 island
            masks = torch.einsum('bke,behw->bkhw', embed.float(), mask_feats.float())
        return self._classify(c), masks

    def _classify(self, c: Tensor) -> Tensor:
        """Normalised centers B x K x D -> class logits (here B x K x (C + 1), softmax)."""
        return self.cls_embed(c)

    def forward(self, x: Tuple[Tensor], batch_data_samples: SampleList
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """x: backbone levels at strides 4..32 -> (list of cls logits, list of mask logits),
        one entry per supervised E-step in training, the final one only in eval."""
        pad_mask = self.pad_mask(batch_data_samples, x[0].device)
        feats = self.pixel_decoder(x, pad_mask)  # strides 32, 16, 8, 4 (zero on padding)
        init = self.initializer(feats[self.init_level], pad_mask)
        dec = self.decoder(init['centers'], feats[:3], pad_mask=pad_mask,
                           center_pos=init['center_pos'],
                           return_logits=self.training and self.supervise_e_step_maps)
        self._query_classes = init['query_classes']
        mask_feats = self.mask_proj(feats[3])
        states = dec['e_steps']
        if not self.training and self.test_iter is not None:  # Table 7b
            states = [s for s in states if s['layer'] == states[-1]['layer']
                      and s['iter'] == self.test_iter]
        elif not self.training or self.deep_supervision == 'final':
            states = states[-1:]
        elif self.deep_supervision == 'layer':
            states = [s for s in states if s['iter'] == self.decoder.num_iters - 1]
        if self.training:  # read (and released) by loss(): memory bank, auxiliary losses
            self._train_cache = dict(feats=feats, mask_feats=mask_feats,
                                     centers=states[-1]['centers'],
                                     e_step_probs=[(s.get('probs'), s['hw']) for s in states])
        else:  # final centers, for a head whose prediction also reads them
            self._final_centers = states[-1]['centers']
        cls_list, mask_list = [], []
        for s in states:
            cls, masks = self._predict(s['centers'], mask_feats)
            cls_list.append(cls)
            mask_list.append(masks)
        return cls_list, mask_list

    # ------------------------------------------------------------------ training
    def _update_memory_bank(self, batch_data_samples: SampleList) -> None:
        """Stuff ids (class - num_things; others ignored) of the padded batch -> the bank."""
        if not hasattr(self.initializer, 'update'):
            return
        feats = self._train_cache['feats'][self.init_level]
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        sem = torch.full((len(batch_data_samples), h, w), 255, dtype=torch.long,
                         device=feats.device)
        for i, ds in enumerate(batch_data_samples):
            if 'gt_sem_seg' in ds:
                s = ds.gt_sem_seg.sem_seg[0].long()
                sem[i, :s.shape[0], :s.shape[1]] = s
        stuff = sem - self.num_things_classes
        stuff = torch.where((stuff >= 0) & (sem < self.num_classes), stuff,
                            torch.full_like(stuff, 255))
        self.initializer.update(feats, stuff)

    def loss(self, x: Tuple[Tensor], batch_data_samples: SampleList):
        """mmdet's Mask2Former losses over every supervised E-step, with the random point
        sampling seeded from checkpointed state, then the memory-bank step."""
        seed = int(torch.randint(2**62, (1,), generator=self.rng.generator()))
        devices = [torch.cuda.current_device()] if x[0].is_cuda else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            losses = super().loss(x, batch_data_samples)
        self._update_memory_bank(batch_data_samples)
        del self._train_cache
        return losses

    def _get_targets_single(self, cls_score, mask_pred, gt_instances, img_meta):
        # the assigner reads each query's fixed class (-1: none) from the image meta
        img_meta = dict(img_meta, query_stuff_classes=self._query_classes)
        return super()._get_targets_single(cls_score, mask_pred, gt_instances, img_meta)
