"""ClustSeg's mask-classification head for mmdet's MaskFormer family (panoptic / instance)."""
from typing import List, NamedTuple, Optional, Tuple

import torch
from mmcv.ops import point_sample
from mmdet.models.utils import multi_apply, preprocess_panoptic_gt
from mmdet.registry import TASK_UTILS
from mmdet.structures import SampleList
from mmdet.utils import reduce_mean
from mmengine.dist import is_distributed
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from clustseg.registry import MODELS
from ..core import CoreOutput, MaskPredictor, needs_inner_rounds, select_states
from ..layers.batch_padding import BatchPadding
from ..losses import pad_stack
from ..supervision import build_supervision
from ..utils import (StepRandom, check_positive_int, host_to_device, merge_cfg,
                     rename_legacy_keys)


#: per device type, the matching stacks at most this many mask values of one image's E-steps
#: at once: on a GPU many (one host transfer for all of them); on the CPU one E-step at a time
#: (a stack of E-steps falls out of the cache: the panoptic costs took 2x longer per E-step at
#: 512 px with 16 stacked, and the stack is a copy; the instance matching 30 % longer at 256 px)
MATCH_CHUNK_ELEMENTS = dict(cpu=1, cuda=2**25)

#: per device type, whether a group of supervised E-steps (:meth:`ClustSegHead.step_groups`)
#: is evaluated stacked along the batch, each term once for the group (on a GPU, where the step
#: is bound by dispatching operators: panoptic 20.9k -> 11.7k operators per T = 3 step, 10.9k ->
#: 9.6k at T = 1), or one E-step at a time (on the CPU, where it is bound by arithmetic: the
#: panoptic step stacked took 3-9 % longer with 8-13 % more peak memory at 512 px, the stacked
#: tensors falling out of the cache); other devices: the GPU's. The logged keys and values are
#: the same either way (tested for both heads).
STACK_E_STEPS = dict(cpu=False, cuda=True)


def stack_e_steps(device: torch.device) -> bool:
    """:data:`STACK_E_STEPS` for ``device``'s type (other devices: the GPU's)."""
    return STACK_E_STEPS.get(device.type, STACK_E_STEPS['cuda'])


def match_chunk(device: torch.device, elements: int) -> int:
    """How many E-steps of ``elements`` mask values each one matching call stacks on
    ``device`` (:data:`MATCH_CHUNK_ELEMENTS`; other devices: the GPU's), at least 1."""
    limit = MATCH_CHUNK_ELEMENTS.get(device.type, MATCH_CHUNK_ELEMENTS['cuda'])
    return max(1, limit // max(elements, 1))


def cat_steps(tensors: List[Tensor], dim: int = 0) -> Tensor:
    """A group's per-E-step tensors concatenated along ``dim`` (one E-step: itself, no
    copy)."""
    return torch.cat(tensors, dim) if len(tensors) > 1 else tensors[0]


def mean_over_ranks(counts: Tensor, device) -> Tensor:
    """Host counts (e.g. matched queries per E-step) averaged over the DDP ranks in one
    all-reduce on ``device``, at least 1: the averaging factors of mmdet's mask heads."""
    if is_distributed():
        counts = reduce_mean(counts.to(device)).cpu()
    return counts.clamp(min=1)


def gt_mask_tensor(gt_instances, dtype) -> Tensor:
    """An image's GT masks (mmdet ``BitmapMasks`` or a tensor) -> M x H x W of ``dtype``."""
    m = gt_instances.masks
    if hasattr(m, 'to_tensor'):
        return m.to_tensor(dtype, gt_instances.labels.device)
    return m.to(dtype)


def select_steps(x: Tensor, steps: List[int]) -> Tensor:
    """Rows ``steps`` (E-step indices, ascending) of ``x`` (S x ...), without a host sync on
    CUDA: a view for consecutive steps, else an index copied to the device without blocking
    (a Python list as an index is copied synchronously)."""
    if steps == list(range(steps[0], steps[-1] + 1)):
        return x[steps[0]:steps[-1] + 1]
    return x.index_select(0, host_to_device(torch.tensor(steps), x.device))


class HeadOutput(NamedTuple):
    """What :meth:`ClustSegHead.forward` returns, and ``loss_by_feat`` / ``predict`` read.

    ``cls_scores`` / ``mask_preds`` / ``centers``: one entry per selected E-step (every
    supervised one in training, the predicting one at test), class logits B x K x C',
    stride-4 mask logits B x K x h x w and the normalised centers B x K x D; ``states``: those
    E-steps' core states; ``mask_feats``: the projected pixel embedding B x E x h x w;
    ``core``: the :class:`CoreOutput`; ``point_coords``: B x P x 2 points in [0, 1]^2 of the
    padded input (x, y) when the inner E-steps are point-supervised
    (``InnerEStepPoints``), whose ``mask_preds`` are then the mask logits at those points,
    B x K x P x 1; ``at_points``: per entry of ``states``, whether it is such a
    point-supervised E-step (:meth:`ClustSegHead.point_supervised`); ``map_states``: the
    E-steps that predict nothing and are supervised through their assignment maps only
    (``DeepSupervision.map_steps``, e.g. ``InnerEStepMaps``)."""
    cls_scores: List[Tensor]
    mask_preds: List[Tensor]
    centers: List[Tensor]
    states: List[dict]
    mask_feats: Tensor
    core: CoreOutput
    point_coords: Optional[Tensor] = None
    map_states: Tuple[dict, ...] = ()
    at_points: Tuple[bool, ...] = ()


class ClustSegHead(BaseModule):
    """Base of the panoptic and instance heads: backbone levels -> :class:`ClusteringCore`
    (axial pixel decoder -> dreamy start -> cluster decoder) -> a (class, mask) prediction
    after every supervised E-step, for mmdet's ``MaskFormer`` detector (which calls
    :meth:`loss` and :meth:`predict`, then its ``ClassScoreFusionHead``).

    Masks: :class:`MaskPredictor` (``<MLP(LN(C)), P_4>``, fp32); classes: :meth:`_classify` of
    the normalised centers (the subclass's class head). Which E-steps are supervised, and
    how, is the ``deep_supervision`` variant's (:class:`DeepSupervision`): every E-step of
    every layer with :class:`EveryEStep` (the paper's), the last E-step of each layer with
    :class:`LastEStepPerLayer` (Table 7a), the output only with :class:`OutputOnly`. At test
    time one prediction is computed: the output's, or with ``test_iter=t`` the one after E/M
    round ``t`` (0-based) of the last layer (Table 7b). Subclasses implement ``_classify``,
    ``loss_by_feat(out, batch_gt_instances, batch_img_metas)`` and ``predict``; the head keeps
    no state between ``forward`` and ``loss`` / ``predict`` (they receive the
    :class:`HeadOutput`).

    Training-time random draws (point sampling) run inside a ``torch.random.fork_rng`` seeded
    from a checkpointed :class:`StepRandom`, so a resumed run draws the same points; the
    initializer's ground-truth step (memory bank) runs after the losses through
    :meth:`ClusteringCore.update` on every rank every training iteration, with the batch's
    semantic map (class ids, 255 = none).

    Args:
        num_things_classes, num_stuff_classes (int): as in mmdet.
        pixel_decoder, initializer, decoder (dict): the :class:`ClusteringCore` modules.
        mask_dims (int): E, channels of the mask embedding.
        deep_supervision (dict | str): the :class:`DeepSupervision` variant (config or
            registered name).
        test_iter (int, optional): E/M round of the last layer that predicts at test time
            (default: the last, i.e. the decoder's output).
        train_cfg: the subclass's keys (:meth:`default_train_cfg`; others are errors).
        test_cfg: the fusion head's keys (those of mmdet's ``MaskFormerFusionHead``:
            ``object_mask_thr``, ``iou_thr``, ``filter_low_score``, ``max_per_image``,
            ``panoptic_on``, ``semantic_on``, ``instance_on``; others are errors).
    """

    #: whether the head's loss supervises E-steps through their maps only
    #: (``DeepSupervision.map_steps``) / predicting at sampled points
    #: (``DeepSupervision.at_points``); the variants that need it check
    supports_map_steps = False
    supports_point_steps = False

    def __init__(self, num_things_classes=80, num_stuff_classes=53, pixel_decoder=None,
                 initializer=None, decoder=None, mask_dims=256, deep_supervision='EveryEStep',
                 test_iter=None, train_cfg=None, test_cfg=None, init_cfg=None):
        super().__init__(init_cfg)
        self.num_things_classes = num_things_classes
        self.num_stuff_classes = num_stuff_classes
        self.num_classes = num_things_classes + num_stuff_classes
        self.core = MODELS.build(dict(type='ClusteringCore', pixel_decoder=pixel_decoder,
                                      initializer=initializer, decoder=decoder,
                                      key='model.panoptic_head'))
        rename_legacy_keys(self)
        self.num_queries = self.core.initializer.num_queries
        variant = self.core.decoder.variant
        if variant.needs_prob_loss and not self.supervise_e_step_maps:
            raise ValueError(f'model.panoptic_head: the {type(variant).__name__} E-step passes no '
                             f'gradient to its Q/K projections and {type(self).__name__} has no '
                             'loss on the E-step maps (panoptic: loss_weights.e_step > 0)')
        self.deep_supervision = build_supervision(
            deep_supervision, 'model.panoptic_head.deep_supervision', self)
        if test_iter is not None and not 0 <= test_iter < self.core.num_iters:
            raise ValueError(f'model.panoptic_head.test_iter={test_iter!r} must be one of the '
                             f'last layer\'s rounds 0..{self.core.num_iters - 1}')
        self.test_iter = test_iter
        self.embed_dims = self.core.decoder.embed_dims
        self.mask_predictor = MaskPredictor(self.embed_dims, self.core.out_channels['stride4'],
                                            mask_dims)
        self.rng = StepRandom(stream='head.points', per_rank=True)
        # the fusion head reads these (with the same defaults); a typo is an error
        self.test_cfg = merge_cfg(
            dict(object_mask_thr=0.8, iou_thr=0.8, filter_low_score=False, max_per_image=100,
                 panoptic_on=True, semantic_on=False, instance_on=False), test_cfg,
            'model.test_cfg')
        check_positive_int('model.test_cfg.max_per_image', self.test_cfg['max_per_image'])
        thr = self.test_cfg['object_mask_thr']
        if self.test_cfg['panoptic_on'] and not 0.5 <= thr <= 1:
            raise ValueError(
                f'model.test_cfg.object_mask_thr={thr!r} must be in [0.5, 1]: a query\'s class '
                'score s competes with its no-object probability 1 - s in the panoptic fusion '
                '(mmdet keeps a query whose best class is not no-object), so a threshold '
                'below 0.5 would keep no more queries than 0.5')
        self.train_cfg = merge_cfg(self.default_train_cfg(), train_cfg, 'model.train_cfg')
        self.assigner = TASK_UTILS.build(self.train_cfg['assigner'])

    @property
    def supervise_e_step_maps(self) -> bool:
        """Whether training asks the core for every E-step's assignment map (a subclass whose
        loss supervises them says so)."""
        return False

    def default_train_cfg(self) -> dict:
        """The allowed ``train_cfg`` keys with their defaults."""
        raise NotImplementedError

    def _classify(self, c: Tensor) -> Tensor:
        """Normalised centers B x K x D -> class logits."""
        raise NotImplementedError

    # ------------------------------------------------------------------ forward
    def forward(self, x, batch_data_samples: SampleList) -> HeadOutput:
        """x: backbone levels at strides 4..32 -> :class:`HeadOutput`."""
        metas = [ds.metainfo for ds in batch_data_samples]
        padding = BatchPadding.from_metas(metas, x[0].device)
        sup, num_iters = self.deep_supervision, self.core.num_iters
        # the losses read the E-step maps' softmax over the clusters only
        core = self.core(x, padding, return_maps=('probs', ) if self.training and
                         self.supervise_e_step_maps else False,
                         inner_rounds=needs_inner_rounds(sup, self.training, self.test_iter))
        states = select_states(core.states, sup, num_iters, self.training, self.test_iter)
        # E-steps that predict nothing and keep their maps (InnerEStepMaps)
        map_states = sup.map_steps(core.states, num_iters) if self.training else ()
        mask_feats = self.mask_predictor.project(core.pyramid['stride4'])
        at_points = self.point_supervised(states)
        coords = point_feats = None
        if any(at_points):
            # uniform points of the padded input, drawn once per step for all inner E-steps;
            # bilinear reads are linear, so <MLP(LN(c)), W P> read at a point equals the
            # stride-4 mask logit map read there; border padding as the upsampling at
            # prediction (no fade to zero within half a cell of the edge)
            coords = torch.rand(mask_feats.shape[0], sup.num_points, 2,
                                device=mask_feats.device)  # B x P x 2
            point_feats = point_sample(mask_feats, coords,
                                       padding_mode='border').unsqueeze(-1)  # B x E x P x 1
        # the centers' normalisation, mask MLP and class head for all E-steps at once (S x B x
        # K x D: a few operators instead of a few per E-step); the mask products one E-step at
        # a time, so that backward consumes each E-step's gradient as it comes (a stacked
        # S x B x K x h x w product would hold every E-step's gradient at once)
        c_all, embed_all = self.mask_predictor.embed_centers(
            torch.stack([s['centers'] for s in states]))
        cls_all = self._classify(c_all)  # S x B x K x C'
        mask_list = [self.mask_predictor.mask_logits(e, point_feats if pts else mask_feats)
                     for e, pts in zip(embed_all.unbind(0), at_points)]
        return HeadOutput(list(cls_all.unbind(0)), mask_list, list(c_all.unbind(0)), states,
                          mask_feats, core, coords, map_states, tuple(at_points))

    def point_supervised(self, states: List[dict]) -> List[bool]:
        """Per selected state, whether its mask prediction is made and supervised at the
        deep-supervision variant's ``num_points`` sampled points only (in training;
        ``DeepSupervision.at_points``)."""
        if not self.training:
            return [False] * len(states)
        return self.deep_supervision.at_points(states, self.core.num_iters)

    # ------------------------------------------------------------------ training
    def preprocess_gt(self, batch_data_samples: SampleList) -> List[InstanceData]:
        """mmdet's panoptic ground truth (``preprocess_panoptic_gt``: thing instances + one
        mask per stuff class, padded to the batch shape)."""
        n = len(batch_data_samples)
        labels, masks = multi_apply(
            preprocess_panoptic_gt, [ds.gt_instances.labels for ds in batch_data_samples],
            [ds.gt_instances.masks for ds in batch_data_samples],
            [ds.gt_sem_seg.sem_seg if 'gt_sem_seg' in ds else None
             for ds in batch_data_samples],
            [self.num_things_classes] * n, [self.num_stuff_classes] * n)
        return [InstanceData(labels=lb, masks=m) for lb, m in zip(labels, masks)]

    def semantic_targets(self, batch_data_samples: SampleList, device) -> Tensor:
        """B x H x W class ids of the padded batch (``gt_sem_seg``; 255 where none), what the
        core's ground-truth step reads."""
        h, w = batch_data_samples[0].metainfo['batch_input_shape']
        sem = torch.full((len(batch_data_samples), h, w), 255, dtype=torch.long, device=device)
        for i, ds in enumerate(batch_data_samples):
            if 'gt_sem_seg' in ds:
                s = ds.gt_sem_seg.sem_seg[0].long()
                sem[i, :s.shape[0], :s.shape[1]] = s
        return torch.where(sem < self.num_classes, sem, torch.full_like(sem, 255))

    @staticmethod
    def full_res_targets(batch_gt_instances) -> Tensor:
        """The padded batch's GT masks at input resolution, B x M_max x H x W uint8 (zero
        masks beyond each image's M), for the point-sampled mask terms."""
        return pad_stack([gt_mask_tensor(gi, torch.uint8) for gi in batch_gt_instances])

    @staticmethod
    def step_groups(states: List[dict], at_points: List[bool]):
        """The supervised E-steps whose terms are summed under one key: ``(key prefix,
        E-step indices)`` per decoder level and supervision (``lv{level}.``, and
        ``lv{level}.pts.`` for the point-supervised inner E-steps), in order of first
        appearance; the output's E-step alone, prefix ``''``. A group is evaluated stacked
        along the batch or one E-step at a time (``STACK_E_STEPS``); its E-step maps share the
        level's resolution. E-step maps that are not tensors (a local level) are evaluated
        one E-step at a time, each its own group (``lv{level}.e{index}.``)."""
        groups = {}
        for i, s in enumerate(states[:-1]):
            if not isinstance(s.get('probs'), (Tensor, type(None))):
                groups[f"lv{s['level']}.e{i}."] = [i]
                continue
            groups.setdefault(f"lv{s['level']}." + ('pts.' if at_points[i] else ''), []).append(i)
        return list(groups.items()) + [('', [len(states) - 1])]

    def loss(self, x, batch_data_samples: SampleList) -> dict:
        """Forward and losses (``loss_by_feat``) with the random draws seeded from
        checkpointed state, then the core's ground-truth step."""
        seed = int(torch.randint(2**62, (1,), generator=self.rng.generator()))
        devices = [torch.cuda.current_device()] if x[0].is_cuda else []
        metas = [ds.metainfo for ds in batch_data_samples]
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = self(x, batch_data_samples)
            losses = self.loss_by_feat(out, self.preprocess_gt(batch_data_samples), metas)
        self.core.update(out.core, self.semantic_targets(batch_data_samples, x[0].device))
        return losses

    def loss_by_feat(self, out: HeadOutput, batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict]) -> dict:
        raise NotImplementedError

    def predict(self, x, batch_data_samples: SampleList):
        """-> (each class's log-probability B x K x C, mask logits B x K x H x W at the padded
        input size) for :class:`ClassScoreFusionHead`."""
        raise NotImplementedError

    @staticmethod
    def query_classes(out: HeadOutput) -> Optional[Tensor]:
        """K long: the class each query is tied to (-1: none)."""
        return out.core.query_classes
