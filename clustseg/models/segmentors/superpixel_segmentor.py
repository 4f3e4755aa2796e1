"""ClustSeg for superpixels: grid dreamy start + recurrent cross-attention decoder + full-res EM."""
import math
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import PixelData

from clustseg.registry import MODELS
from ..initializers.base_initializer import PIXEL_LEVELS
from ..layers.batch_padding import BatchPadding
from ..layers.seed_grid import grid_points
from ..layers.local_em import LocalAssignment, local_grid
from ..layers.positional_encoding import labels_at
from ..layers.recurrent_cross_attention import RecurrentCrossAttention
from ..losses.superpixel_losses import lab_target
from ..utils import (StepRandom, check_positive_int, enforce_connectivity,
                     merge_cfg, rename_legacy_keys)


FINAL_EM_MODES = ('local', 'dense')
#: the map of the seed grid when no initializer names one (no initializer, the no-decoder
#: ablation, or one that reads no level, learned queries)
SEED_LEVEL = 'stride8'


class TooManySuperpixelsError(ValueError):
    """K exceeds what an image allows (the pixels of the map the seeds are sampled from)."""

    def __init__(self, message, max_k):
        super().__init__(message)
        self.max_k = max_k


@MODELS.register_module()
class SuperpixelSegmentor(BaseModel):
    """backbone -> :class:`ClusteringCore` (pixel decoder -> GridInitializer(K) ->
    ClusterDecoder) -> final EM at full size.

    Pipeline of one forward pass (B images, K superpixels chosen per call):

    1. ``backbone`` gives strides 4..32; ``pixel_decoder`` returns maps at strides 32, 16, 8, 4.
    2. ``initializer`` (GridInitializer) samples K centers from the map it reads, its
       ``in_level`` (stride 8; Eq. 9): the segmentor's ``seed_level`` (:data:`SEED_LEVEL`
       without an initializer or with one that reads no level).
    3. ``decoder`` (ClusterDecoder) refines them with recurrent cross-attention layers at
       strides 32/16/8 (Eq. 10-11); each of its E-steps is a soft assignment B x K x N_l, or
       at the decoder's ``local_levels`` (e.g. stride 8, whose grid of pixels is the seed
       map's) the same 9-candidate local assignment as the final E/M
       (:class:`LocalAssignment`, O(9 N_l)).
    4. ``embed_head`` builds the full-resolution pixel embedding (learned + Lab + xy/S); the
       centers are mapped into that space (grid-sampled embedding at the K grid points plus a
       zero-initialised projection of the decoder centers) and ``final_iters`` Gaussian E/M
       rounds run at full resolution in ``final_em`` (a :class:`RecurrentCrossAttention` with
       identity K/V and identity-initialised Q):
       ``final_em_mode='local'`` (default) assigns each pixel among the 9 centers of its own and
       the neighbouring grid cells (its local form, :func:`local_em`, O(9 HW) per round, the grid of
       ``GridInitializer``: K seeds in ``grid_row_counts`` rows, one cell each, so the actual K
       is the requested K); ``'dense'`` is the softmax over all K (O(K HW), the ablation).
       Both have the same parameters, so a checkpoint loads in either mode.
    5. Hard superpixels = argmax over the candidates (K for 'dense') of the last
       full-resolution E-step, then :func:`enforce_connectivity` with
       ``min_size = round(min_size_ratio * HW / K)``.

    ``backbone_channels_last=True`` runs the backbone in channels-last (NHWC) memory format,
    whose oneDNN convolutions and max-pooling are faster on a CPU (same parameters and state
    dict; results equal up to float rounding).

    The batch's padding (:meth:`padding`: ``img_shape`` vs the batch input) goes to the core
    and, as its mask (True = padding), to the final EM; the grid initializer's ``center_pos`` (the
    decoder's position convention) is the decoder's query position.

    Losses (deep supervision, every E-step): SLIC loss (weight 1) + smooth-L1 Lab
    reconstruction (weight 10) on each full-resolution E-step (on the local assignment itself
    in 'local' mode: no K x HW map), and the same on each decoder E-step at its own
    resolution (labels read at each cell's centre pixel, Lab averaged over the cell; the
    E-step's ``probs``, a softmax over clusters for every decoder variant), scaled by
    ``train_cfg.decoder_loss_weight``. Pixels with label < 0 or outside ``img_shape`` are
    not in the losses.

    ``train_cfg``: ``num_superpixels_range=(50, 2500)`` (K drawn uniformly per batch from a
    :class:`StepRandom`, so the draw is checkpointed and equal on every rank),
    ``decoder_loss_weight=1.0``. ``test_cfg``: ``num_superpixels=600`` (the requested = actual
    K before the connectivity step), ``min_size_ratio=0.25``, ``compactness=1.0`` (a factor on
    the learned weight of the embedding's position channels at inference, as SLIC's
    compactness: below 1 the superpixels follow image boundaries more and are less regular;
    training always uses 1). Other keys in either are errors.
    """

    def __init__(self, backbone, pixel_decoder, initializer, decoder, embed_head,
                 loss_slic=dict(type='SLICLoss', loss_weight=1.0),
                 loss_recon=dict(type='SuperpixelReconstructionLoss', loss_weight=10.0),
                 final_iters=3, final_em_mode='local',
                 backbone_channels_last=False, data_preprocessor=None, train_cfg=None,
                 test_cfg=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if final_em_mode not in FINAL_EM_MODES:
            raise ValueError(f'model.final_em_mode={final_em_mode!r} is not supported; allowed '
                             f'values: {list(FINAL_EM_MODES)}')
        self.final_em_mode = final_em_mode
        self.backbone = MODELS.build(backbone)
        self.backbone_channels_last = bool(backbone_channels_last)
        if self.backbone_channels_last:  # conv weights NHWC: oneDNN's faster CPU path
            self.backbone.to(memory_format=torch.channels_last)
        self.core = MODELS.build(dict(type='ClusteringCore', pixel_decoder=pixel_decoder,
                                      initializer=initializer, decoder=decoder,
                                      key='model'))
        rename_legacy_keys(self)
        # the seeds and the local grid are laid out on the map the initializer reads
        self.seed_level = getattr(self.core.initializer, 'in_level', None) or SEED_LEVEL
        self.embed_head = MODELS.build(embed_head)
        self.loss_slic = MODELS.build(loss_slic)
        self.loss_recon = MODELS.build(loss_recon)
        e = self.embed_head.out_channels
        self.center_proj = None
        if self.core.decoder is not None:
            self.center_proj = nn.Linear(self.core.decoder.embed_dims, e)
            nn.init.zeros_(self.center_proj.weight)
            nn.init.zeros_(self.center_proj.bias)
        check_positive_int('model.final_iters', final_iters)
        self.final_em = RecurrentCrossAttention(
            e, num_heads=1, num_iters=final_iters, identity_kv=True, center_norm_bias=True,
            scale=1.0)
        with torch.no_grad():
            self.final_em.q_proj.weight.copy_(torch.eye(e))
            self.final_em.q_proj.bias.zero_()
        self.train_cfg = merge_cfg(
            dict(num_superpixels_range=(50, 2500), decoder_loss_weight=1.0), train_cfg,
            'model.train_cfg')
        self.test_cfg = merge_cfg(dict(num_superpixels=600, min_size_ratio=0.25,
                                       compactness=1.0), test_cfg, 'model.test_cfg')
        lo, hi = self.train_cfg['num_superpixels_range']
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
            raise ValueError('model.train_cfg.num_superpixels_range must be (low, high) integers '
                             f'with 1 <= low <= high, got {(lo, hi)}')
        if self.core.decoder is not None and self.train_cfg['decoder_loss_weight'] <= 0 and \
                self.core.decoder.variant.needs_prob_loss:
            raise ValueError('model.train_cfg.decoder_loss_weight must be > 0 with the '
                             f'{type(self.core.decoder.variant).__name__} E-step: it passes no '
                             'gradient to the Q/K projections, only the loss on its E-step '
                             'probabilities trains them')
        check_positive_int('model.test_cfg.num_superpixels', self.test_cfg['num_superpixels'])
        c = self.test_cfg['compactness']
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
            raise ValueError(f'model.test_cfg.compactness must be a number > 0, got {c!r}')
        if not self.test_cfg['min_size_ratio'] >= 0:
            raise ValueError('model.test_cfg.min_size_ratio must be >= 0, got '
                             f"{self.test_cfg['min_size_ratio']}")
        self.k_random = StepRandom(stream='num_superpixels')

    # ------------------------------------------------------------------ core
    def _raw_image(self, inputs):
        """Undo the preprocessor's normalisation -> B x 3 x H x W RGB in [0, 255]."""
        dp = self.data_preprocessor
        img = inputs
        if getattr(dp, '_enable_normalize', False):
            img = img * dp.std + dp.mean
        return img

    @staticmethod
    def padding(inputs, data_samples) -> BatchPadding:
        """Where the batch padded each image (:class:`BatchPadding` of the metas'
        ``img_shape``; a sample without one counts as unpadded)."""
        metas = [ds.metainfo for ds in data_samples] if data_samples else \
            [{} for _ in range(inputs.shape[0])]
        return BatchPadding.from_metas(metas, inputs.device, inputs.shape[-2:])

    def cluster(self, inputs, num_clusters, pad_mask=None, return_all=True, dense_final=True,
                probs=True, timer=None, compactness=None):
        """Runs the network.

        Args:
            inputs: B x 3 x H x W normalised RGB. num_clusters: K.
            pad_mask: B x H x W bool, True = padded pixel (images start at (0, 0)), or the
                batch's :class:`BatchPadding` (:meth:`padding`).
            return_all: keep every full-resolution E-step (else only the last one).
            dense_final: in 'local' mode also return the dense B x K x HW maps in ``final`` /
                ``final_logits`` (zero / -inf outside each pixel's 9 candidates; O(K HW),
                for tools that read dense maps). Losses and :meth:`superpixels` do not.
            probs: in 'local' mode, compute the last E-step's softmax (False: its logits only,
                all the hard assignment needs; ``local['probs'][-1]`` is then None).
            timer: optional callable, called with a stage name at the end of each stage
                ('backbone', 'pixel_decoder', 'initializer_decoder', 'embed_head',
                'final_em'; ``tools/analysis_tools/superpixel_speed.py``).
            compactness: factor on the position channels' weight (None: ``test_cfg``'s; the
                losses pass 1).

        Returns:
            dict(final=[T (or 1) x (B x K x HW)] assignments of the full-resolution E-steps
            (None in 'local' mode without ``dense_final``), final_logits (same, logits),
            local=None ('dense') or dict(probs, logits: [T (or 1) x (B x K x 9 x P)], grid:
            the :class:`LocalGrid`), e_steps=decoder E-steps, hw=(H, W), lab=B x 3 x H x W
            scaled Lab, final_em_mode).
        """
        b, _, h, w = inputs.shape
        check_positive_int('num_superpixels', num_clusters)
        tick = timer or (lambda stage: None)
        if self.backbone_channels_last:
            x = self.backbone(inputs.contiguous(memory_format=torch.channels_last))
            x = [f.contiguous() for f in x]  # the pixel decoder is faster on NCHW
        else:
            x = self.backbone(inputs)
        tick('backbone')
        padding = BatchPadding.of(pad_mask, inputs)
        core = self.core.decode_pixels(x, padding)  # strides 32, 16, 8, 4
        tick('pixel_decoder')
        fh, fw = core.pyramid[self.seed_level].shape[-2:]
        if num_clusters > fh * fw:
            raise TooManySuperpixelsError(
                f'num_superpixels={num_clusters} is too large for a {h}x{w} input: seeds are '
                f'sampled from its {fh}x{fw} {self.seed_level} feature map, so the largest K '
                f'it allows is {fh * fw}', fh * fw)
        core = self.core.cluster(core, num_queries=num_clusters, return_maps=return_all,
                                 seed_hw=(fh, fw))
        tick('initializer_decoder')
        if compactness is None:
            compactness = self.test_cfg['compactness']
        # the position channels are xy / S; with S / c in its place they weigh c times as much
        interval = math.sqrt(h * w / num_clusters) / compactness
        lab = lab_target(self._raw_image(inputs), bgr=False)  # B x 3 x H x W
        emb = self.embed_head(inputs, lab, core.pyramid['stride4'], interval)  # B x E x H x W
        tick('embed_head')
        # grid points of the init level -> full-resolution coordinates
        pts = core.init.get('points')  # K x 2 at the seed level (learned queries: none)
        if pts is None:
            pts = grid_points(num_clusters, fh, fw, inputs.device)
        pts = pts * torch.tensor([w / fw, h / fh], device=inputs.device)
        grid = torch.stack([pts[:, 0] / w * 2 - 1, pts[:, 1] / h * 2 - 1], -1)
        seeds = F.grid_sample(emb, grid.view(1, 1, -1, 2).expand(b, -1, -1, -1),
                              mode='bilinear', align_corners=False)[:, :, 0].transpose(1, 2)
        centers = seeds  # B x K x E
        if core.centers is not None:
            centers = seeds + self.center_proj(core.centers).float()
        res = dict(final=None, final_logits=None, local=None, e_steps=core.states,
                   hw=(h, w), lab=lab, final_em_mode=self.final_em_mode)
        kpm = padding.mask_at((h, w))
        kpm = None if kpm is None else kpm.flatten(1)
        emb = emb.flatten(2).transpose(1, 2)  # B x HW x E
        if not self.local_final_em:
            out = self.final_em(centers, emb, key_padding_mask=kpm, return_logits=return_all)
            res.update(final=out['assigns'], final_logits=out['logits'])
            tick('final_em')
            return res
        lgrid = local_grid(num_clusters, (fh, fw), (h, w), inputs.device)
        out = self.final_em(centers, emb, key_padding_mask=kpm, grid=lgrid,
                            return_logits=return_all, last_m_step=False,  # centers unused
                            last_probs=probs or dense_final)
        res['local'] = dict(probs=out['probs'], logits=out['logits'], grid=lgrid)
        tick('final_em')
        if dense_final:
            res.update(final=[lgrid.to_dense(p) for p in out['probs']],
                       final_logits=[lgrid.to_dense(x, float('-inf')) for x in out['logits']])
        return res

    @property
    def local_final_em(self) -> bool:
        """Whether the full-resolution E/M is the local one (each pixel among its 9 nearest
        seed cells): what the ONNX export and soft assignments need."""
        return self.final_em_mode == 'local'

    def min_size(self, h: int, w: int, k: int) -> int:
        """The connectivity step's smallest superpixel at h x w with K superpixels."""
        return int(round(self.test_cfg['min_size_ratio'] * h * w / k))

    # ------------------------------------------------------------------ API
    def _sample_k(self, h, w):
        """K for this batch: uniform in ``train_cfg.num_superpixels_range``, capped at the pixel
        count of the feature map the seeds are sampled from (a warning names the cap: Python
        shows each distinct one once)."""
        lo, hi = self.train_cfg['num_superpixels_range']
        stride = 32 // 2 ** PIXEL_LEVELS.index(self.seed_level)
        cap = math.ceil(h / stride) * math.ceil(w / stride)
        if cap < hi:
            warnings.warn(f'model.train_cfg.num_superpixels_range=({lo}, {hi}): K is capped at '
                          f'{cap}, one seed per stride-{stride} cell of the {h} x {w} training '
                          f'batch' + (f'; every batch trains at K={cap}' if cap <= lo else '') +
                          ' (larger K needs larger crops)', stacklevel=2)
            hi = cap
        return self.k_random.randint(min(lo, hi), hi)

    def loss(self, inputs, data_samples):
        labels = torch.stack([ds.gt_sem_seg.data[0] for ds in data_samples]).long()  # B x H x W
        padding = self.padding(inputs, data_samples)
        pad_mask = padding.mask_at(inputs.shape[-2:])  # B x H x W, True = batch padding
        valid = labels >= 0 if pad_mask is None else (labels >= 0) & ~pad_mask
        k = self._sample_k(*inputs.shape[-2:])
        out = self.cluster(inputs, k, padding, dense_final=False, compactness=1.0)
        losses = {}
        lab = out['lab']
        if out['local'] is not None:
            finals = [LocalAssignment(p, out['local']['grid']) for p in out['local']['probs']]
        else:
            finals = out['final']
        for t, assign in enumerate(finals):
            self._add(losses, f'full.i{t}', assign, labels, lab, valid, 1.0)
        wd = self.train_cfg['decoder_loss_weight']
        if wd > 0:
            for es in out['e_steps']:
                lh, lw = es['hw']
                # both cell-centred: the label at each cell's centre pixel, the mean Lab of
                # the cell (nearest resizing took the top-left pixel, (s - 1) / 2 px off)
                lbl = labels_at(labels, (lh, lw))
                lab_l = F.adaptive_avg_pool2d(lab, (lh, lw))
                self._add(losses, f"d{es['layer']}.i{es['iter']}", es['probs'], lbl, lab_l,
                          lbl >= 0, wd)
        return losses

    def _add(self, losses, prefix, assign, labels, lab, valid, weight):
        """SLIC + Lab reconstruction losses of one E-step (assign B x K x N, or a
        :class:`LocalAssignment`; labels/lab at the same H x W) into ``losses`` under
        ``prefix``."""
        for name, val in self.loss_slic(assign, labels, valid).items():
            losses[f'{prefix}.{name}'] = val * weight
        losses[f'{prefix}.loss_recon'] = self.loss_recon(assign, lab, valid) * weight

    @torch.no_grad()
    def superpixels(self, inputs, num_superpixels=None, timer=None):
        """inputs: B x 3 x H x W normalised -> list of B label maps (H x W int64 numpy),
        after the connectivity step. ``timer``: see :meth:`cluster` (plus 'hard_labels',
        'connectivity')."""
        k = self.test_cfg['num_superpixels'] if num_superpixels is None else num_superpixels
        out = self.cluster(inputs, k, return_all=False, dense_final=False, probs=False,
                           timer=timer)
        tick = timer or (lambda stage: None)
        h, w = out['hw']
        if out['local'] is not None:  # center id of each pixel's best candidate
            hard = out['local']['grid'].candidate_labels(out['local']['logits'][-1])
        else:
            hard = out['final_logits'][-1].argmax(1)
        hard = hard.view(-1, h, w).cpu().numpy()  # last E-step
        tick('hard_labels')
        labels = [enforce_connectivity(x, self.min_size(h, w, k)) for x in hard]
        tick('connectivity')
        return labels

    def predict(self, inputs, data_samples):
        k = self.test_cfg['num_superpixels']
        try:
            labels = self.superpixels(inputs, k)
        except TooManySuperpixelsError as e:
            paths = [ds.metainfo.get('img_path', '?') for ds in data_samples]
            raise TooManySuperpixelsError(f'image(s) {paths}: {e}', e.max_k) from None
        for ds, lbl in zip(data_samples, labels):
            ih, iw = ds.metainfo.get('img_shape', lbl.shape)
            t = torch.from_numpy(lbl[:ih, :iw])[None]
            oh, ow = ds.metainfo.get('ori_shape', (ih, iw))
            if (oh, ow) != (ih, iw):  # a resizing test pipeline: back to the original size,
                # where nearest sampling can cut a thin superpixel: connected again there
                t = F.interpolate(t[None].float(), size=(oh, ow), mode='nearest')[0, 0]
                t = torch.from_numpy(enforce_connectivity(t.long().numpy(),
                                                          self.min_size(oh, ow, k)))[None]
            ds.pred_superpixels = PixelData(data=t)
        return data_samples

    def forward(self, inputs, data_samples=None, mode='tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.cluster(inputs, self.test_cfg['num_superpixels'], return_all=False,
                                dense_final=False)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
