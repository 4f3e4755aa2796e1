"""ClustSeg's semantic-segmentation decode head for mmseg's ``EncoderDecoder`` (paper §4.3, A.3)."""
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from clustseg.registry import MODELS
from ..core import MaskPredictor, needs_inner_rounds, select_states
from ..layers.batch_padding import BatchPadding
from ..layers.positional_encoding import conv_stride, labels_at
from ..supervision import build_supervision
from ..utils import merge_cfg, rename_legacy_keys
#: keys of the segmentor's ``test_cfg`` that mmseg's EncoderDecoder reads (others are errors)
TEST_CFG_DEFAULTS = dict(mode='whole', crop_size=None, stride=None)
#: the segmentor's ``train_cfg``: EncoderDecoder passes it to the head, which reads no key
TRAIN_CFG_DEFAULTS = dict()


def label_file(data_sample) -> str:
    """The label file of a data sample (its image when the sample has no label path)."""
    meta = data_sample.metainfo
    return str(meta.get('seg_map_path') or meta.get('img_path') or '<unnamed sample>')


def upsample_to_input(x: Tensor, size: Sequence[int]) -> Tensor:
    """B x C x h x w map -> B x C x H x W of the input: bilinear by the conv stride s (a fine
    pixel r at coarse coordinate (r + 0.5) / s - 0.5, the pixel decoder's convention), cropped
    to ``size``; a plain bilinear resize when no power-of-two stride fits."""
    h, w = int(size[0]), int(size[1])
    s = conv_stride((h, w), tuple(x.shape[-2:]))
    if s is None:
        return F.interpolate(x, size=(h, w), mode='bilinear', align_corners=False)
    if s == 1:
        return x
    return F.interpolate(x, scale_factor=float(s), mode='bilinear',
                         align_corners=False)[..., :h, :w]


@MODELS.register_module()
class ClustSegSemanticHead(BaseModule):
    """backbone levels -> :class:`ClusteringCore` (axial pixel decoder -> dreamy start with
    K = ``num_classes`` class centers -> cluster decoder) -> per-pixel class scores after every
    E-step.

    Center k is class k (``MemoryBankInitializer``: Eq. 7, the class's memory-bank mean through
    an FFN; or a learned table for the ablation). The per-pixel class logit of class k is the
    mask logit of center k, ``s_k(p) = <MLP(LN(c_k)), P_4(p)>`` (:class:`MaskPredictor`: ``P_4``
    the stride-4 pixel-decoder map projected to ``mask_dims``, fp32), so ``softmax_k s_k(p)``
    is pixel p's
    class distribution: there is no separate class head and no matching (the assignment of
    centers to classes is fixed).

    Loss (paper A.3): cross-entropy over the K-way softmax (weight ``loss_ce_weight`` = 5,
    averaged over labelled pixels) + dice per class (``loss_dice_weight`` = 1; naive dice with
    ``dice_eps`` of the softmax probability vs the one-hot label over an image's labelled pixels,
    averaged over the classes present in the image, then over the images), at stride 4 (labels
    taken at each cell's centre, :func:`labels_at`), on the E-steps the ``deep_supervision``
    variant selects (:class:`EveryEStep`: every E-step of every layer; :class:`LastEStepPerLayer`:
    the last E-step of each layer; :class:`OutputOnly`: the output only). Final-step keys
    ``loss_ce`` / ``loss_dice`` / ``acc_seg``, others prefixed ``l{layer}i{iter}.``.
    ``ignore_index`` (255, also mmseg's padding value of labels) is ignored; other labels outside
    ``[0, num_classes)`` are errors.

    Memory bank: ``loss`` ends with the core's ground-truth step (:meth:`ClusteringCore.update`
    with the labels; the bank stores its ``in_level`` embeddings, detached) on every rank at
    every training iteration; the bank is frozen in eval mode and its queues are buffers (saved
    in checkpoints).

    Padding: the pad mask (True = padding) comes from each image's ``img_shape`` vs the batch's
    input shape (``batch_input_shape`` or ``pad_shape`` of the metas, else the largest
    ``img_shape``); in mmseg's slide inference every window is an unpadded crop (no mask).

    Prediction (``predict``): B x K x H x W per-pixel class probabilities (softmax over the K
    mask logits of the last E-step, upsampled bilinearly from stride 4 to the input size), which
    mmseg's whole / slide inference averages and ``postprocess_result`` crops, resizes and
    argmaxes.

    ``train_cfg`` / ``test_cfg`` are the segmentor's (mmseg passes them to ``loss`` /
    ``predict``): checked with ``merge_cfg`` (``test_cfg``: ``mode``, ``crop_size``,
    ``stride``; ``train_cfg``: no key), an unknown key is a ``KeyError``.

    Args:
        num_classes (int): K.
        pixel_decoder, initializer, decoder (dict): the :class:`ClusteringCore` modules; the
            initializer must have ``num_classes`` queries, query k tied to class k.
        mask_dims (int): E, channels of the mask embedding.
        deep_supervision (dict | str): the :class:`DeepSupervision` variant (config or
            registered name; the semantic loss has no map-only or point-supervised E-steps).
        loss_ce_weight, loss_dice_weight, dice_eps (float): the loss.
        ignore_index (int): label ignored by the loss and the memory bank.
        align_corners (bool): read by mmseg's ``postprocess_result`` (its final resize).
    """

    def __init__(self, num_classes, pixel_decoder, initializer, decoder, mask_dims=256,
                 deep_supervision='EveryEStep', loss_ce_weight=5.0, loss_dice_weight=1.0,
                 dice_eps=1.0, ignore_index=255, align_corners=False, init_cfg=None):
        super().__init__(init_cfg)
        self.num_classes = self.out_channels = num_classes
        self.align_corners = align_corners
        self.ignore_index = ignore_index
        self.core = MODELS.build(dict(type='ClusteringCore', pixel_decoder=pixel_decoder,
                                      initializer=initializer, decoder=decoder,
                                      key='model.decode_head'))
        rename_legacy_keys(self)
        self.deep_supervision = build_supervision(
            deep_supervision, 'model.decode_head.deep_supervision', self)
        variant = self.core.decoder.variant
        if variant.needs_prob_loss:
            raise ValueError(f'model.decode_head: the {type(variant).__name__} E-step passes no '
                             'gradient to its Q/K projections, and the semantic head has no loss '
                             'on the E-step maps')
        init = self.core.initializer
        if init.num_queries != num_classes:
            raise ValueError(f'the initializer has {init.num_queries} queries; the '
                             f'semantic head needs one per class ({num_classes})')
        qc = getattr(init, 'query_classes', None)  # a memory bank: query k is class k
        if isinstance(qc, Tensor) and not torch.equal(qc.cpu(), torch.arange(num_classes)) and \
                not bool((qc < 0).all()):
            raise ValueError('the initializer ties its queries to classes '
                             f'{qc.tolist()[:10]}...; the semantic head needs query k = class k')
        self.loss_ce_weight = float(loss_ce_weight)
        self.loss_dice_weight = float(loss_dice_weight)
        self.dice_eps = float(dice_eps)
        if not self.dice_eps > 0:  # an absent class would give 0 / 0
            raise ValueError(f'model.decode_head.dice_eps must be > 0, got {dice_eps!r}')
        self.mask_predictor = MaskPredictor(self.core.decoder.embed_dims,
                                            self.core.out_channels['stride4'], mask_dims)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Sequence[Tensor], batch_img_metas: Optional[List[dict]] = None,
                pad_mask: Union[None, Tensor, BatchPadding] = None) -> List[dict]:
        """x: backbone levels at strides 4..32 -> (list of dict(layer, iter, logits = B x K x
        h4 x w4 class logits), one per supervised E-step in training, the final one in eval;
        the :class:`CoreOutput`). ``pad_mask`` (B x H x W, True = padding, or a
        :class:`BatchPadding`) defaults to the padding of the metas (none without metas)."""
        if pad_mask is None and batch_img_metas is not None:
            pad_mask = BatchPadding.from_metas(batch_img_metas, x[0].device)
        core = self.core(x, pad_mask,
                         inner_rounds=needs_inner_rounds(self.deep_supervision, self.training))
        states = select_states(core.states, self.deep_supervision, self.core.num_iters,
                               self.training)
        mask_feats = self.mask_predictor.project(core.pyramid['stride4'])
        outs = [dict(layer=s['layer'], iter=s['iter'],
                     logits=self.mask_predictor(s['centers'], mask_feats)[1]) for s in states]
        return outs, core

    # ------------------------------------------------------------------ training
    def _targets(self, batch_data_samples) -> Tensor:
        """B x H x W int64 labels of the padded batch (``ignore_index`` on padding)."""
        segs = [ds.gt_sem_seg.data[0].long() for ds in batch_data_samples]
        h = max(s.shape[0] for s in segs)
        w = max(s.shape[1] for s in segs)
        out = segs[0].new_full((len(segs), h, w), self.ignore_index)
        for i, s in enumerate(segs):
            out[i, :s.shape[0], :s.shape[1]] = s
        labelled = out != self.ignore_index
        bad = labelled & ((out < 0) | (out >= self.num_classes))
        any_bad, any_labelled = torch.stack([bad.any(), labelled.any()]).tolist()  # one sync
        if any_bad:
            files = [label_file(ds) for i, ds in enumerate(batch_data_samples)
                     if bool(bad[i].any())]
            raise ValueError(f'ground-truth labels {sorted(set(out[bad].unique().tolist()))} '
                             f'are outside [0, {self.num_classes}) and not ignore_index='
                             f'{self.ignore_index} (in {", ".join(files)})')
        if not any_labelled:
            warnings.warn(
                'a training batch has no labelled pixel (every label is ignore_index='
                f'{self.ignore_index}: '
                f'{", ".join(label_file(ds) for ds in batch_data_samples)}), so it trains '
                'nothing; if every batch is so, check the label files and the dataset\'s '
                'reduce_zero_label', stacklevel=2)
        return out

    def step_losses(self, logits: Tensor, target: Tensor) -> Tuple[Tensor, Tensor]:
        """logits B x K x h x w, target B x h x w (ignore_index = unlabelled) ->
        (cross-entropy, dice), unweighted, fp32."""
        logits = logits.float()
        valid = target != self.ignore_index
        n = valid.sum()
        ce = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction='sum')
        ce = ce / n.clamp(min=1)
        prob = logits.softmax(1).flatten(2) * valid.flatten(1)[:, None]  # B x K x N
        onehot = F.one_hot(torch.where(valid, target, 0).flatten(1), self.num_classes)
        onehot = onehot.transpose(1, 2).to(prob.dtype) * valid.flatten(1)[:, None]
        inter = (prob * onehot).sum(-1)
        dice = 1 - (2 * inter + self.dice_eps) / (prob.sum(-1) + onehot.sum(-1) + self.dice_eps)
        # over the classes present in each image (as Mask2Former's dice runs over the matched,
        # present masks), then over the images with labelled pixels
        present = (onehot.sum(-1) > 0).to(dice.dtype)  # B x K
        per_image = (dice * present).sum(-1) / present.sum(-1).clamp(min=1)
        labelled = (present.sum(-1) > 0).to(dice.dtype)
        return ce, (per_image * labelled).sum() / labelled.sum().clamp(min=1)

    def loss(self, x: Sequence[Tensor], batch_data_samples, train_cfg=None) -> dict:
        """Losses of every supervised E-step, then the memory-bank step (every rank)."""
        merge_cfg(TRAIN_CFG_DEFAULTS, train_cfg, 'model.train_cfg')
        metas = [ds.metainfo for ds in batch_data_samples]
        labels = self._targets(batch_data_samples)
        outs, core = self.forward(x, metas)
        losses = {}
        for j, out in enumerate(outs):
            target = labels_at(labels, out['logits'].shape[-2:])
            ce, dice = self.step_losses(out['logits'], target)
            prefix = '' if j == len(outs) - 1 else f"l{out['layer']}i{out['iter']}."
            losses[prefix + 'loss_ce'] = self.loss_ce_weight * ce
            losses[prefix + 'loss_dice'] = self.loss_dice_weight * dice
        with torch.no_grad():
            valid = target != self.ignore_index
            hit = (outs[-1]['logits'].argmax(1) == target) & valid
            losses['acc_seg'] = 100.0 * hit.sum() / valid.sum().clamp(min=1)
        self.core.update(core, torch.where(labels == self.ignore_index,
                                           torch.full_like(labels, 255), labels))
        return losses

    # ------------------------------------------------------------------ inference
    def predict(self, x: Sequence[Tensor], batch_img_metas: List[dict], test_cfg=None) -> Tensor:
        """-> B x K x H x W per-pixel class probabilities at the input size (see the class
        doc); in slide mode the input is one unpadded window."""
        test_cfg = merge_cfg(TEST_CFG_DEFAULTS, test_cfg, 'model.test_cfg')
        if test_cfg['mode'] == 'slide':  # one window, unpadded: no padding to pass
            size = tuple(int(v) for v in batch_img_metas[0]['img_shape'][:2])
            padding = None
        else:
            padding = BatchPadding.from_metas(batch_img_metas, x[0].device)
            size = padding.input_hw
        logits = self.forward(x, pad_mask=padding)[0][-1]['logits']
        return upsample_to_input(logits, size).softmax(1)
