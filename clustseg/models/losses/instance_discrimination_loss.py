"""Instance discrimination (MaX-DeepLab / kMaX-DeepLab auxiliary loss), as pure functions.

A contrastive loss on the L2-normalised pixel embedding (kMaX: 128-d output of the pixel
head): pixels of one ground-truth segment are pulled together, pixels of different segments
pushed apart, with temperature ``0.3`` (deeplab2 ``instance_discrimination_temperature``; the
kMaX PyTorch port hard-codes the same value). It needs no matching: targets are the GT
segments themselves. The form used here (the panoptic head's):

- :func:`pixelwise_instance_discrimination_loss` - pixel vs. *pixel* (kMaX-DeepLab PyTorch port
  ``pixelwise_insdis_loss``): 4096 pixels sampled per image with ``P ~ (HW / area) ** 1.5``;
  for every sampled pixel, ``softmax_j(<f_i, f_j> / tau)`` over the sampled pixels against the
  uniform distribution over the sampled pixels of its own segment.

kMaX-DeepLab's COCO weight for this term is ``INSDIS_WEIGHT = 1.0``.
"""
from typing import Optional

import torch
from torch import Tensor

from .loss_utils import flatten_masks, fp32_island, per_image_mean, shape_str
from .pixel_sampling import area_weighted_sample, inverse_segment_area

#: columns (anchor pixels i) of the S x S logits formed at a time by :func:`kept_pair_logsumexp`
LSE_CHUNK = 512
#: exponent of the inverse segment area in the sampling law (kMaX ``PIXEL_INSDIS_TEMPERATURE``)
SAMPLE_TEMPERATURE = 1.5


def _check(pixel_feats: Tensor, gt_masks: Tensor):
    f = flatten_masks(pixel_feats, 'pixel_feats')  # B x C x HW
    g = flatten_masks(gt_masks, 'gt_masks')  # B x M x HW
    if g.shape[0] != f.shape[0] or g.shape[2] != f.shape[2]:
        raise ValueError(f'gt_masks ({shape_str(g)}) must be B x M x HW with the B and HW of '
                         f'pixel_feats ({shape_str(f)})')
    return f, g


class _KeptPairLogSumExp(torch.autograd.Function):
    """:func:`kept_pair_logsumexp`: forward and an explicit backward that recomputes the
    logits chunk by chunk (nothing S x S is kept or formed whole)."""

    @staticmethod
    def forward(ctx, feats, keep, temperature, chunk):
        kept = [k.nonzero().squeeze(1) for k in keep]  # per image: the kept samples j
        out = feats.new_zeros(feats.shape[0], feats.shape[2])  # B x S(i)
        for b, idx in enumerate(kept):
            if idx.numel() == 0:  # no sample to compare with: 0 (the caller weighs it 0)
                continue
            fk = feats[b][:, idx].t() / temperature  # S_kept x C
            for i0 in range(0, feats.shape[2], chunk):
                # S_kept x c: l_ji = <f_j, f_i> / tau
                out[b, i0:i0 + chunk] = torch.logsumexp(fk @ feats[b][:, i0:i0 + chunk], dim=0)
        ctx.save_for_backward(feats, out)
        ctx.kept, ctx.temperature, ctx.chunk = kept, temperature, chunk
        return out

    @staticmethod
    def backward(ctx, grad):
        feats, lse = ctx.saved_tensors
        tau, chunk = ctx.temperature, ctx.chunk
        out = torch.zeros_like(feats)  # B x C x S
        for b, idx in enumerate(ctx.kept):
            if idx.numel() == 0:
                continue
            fk = feats[b][:, idx]  # C x S_kept
            g_kept = torch.zeros_like(fk)
            for i0 in range(0, feats.shape[2], chunk):
                fi = feats[b][:, i0:i0 + chunk]  # C x c
                # d lse_i / d l_ji = softmax_j, recomputed; times the incoming gradient of i
                a = (fk.t() @ fi).div_(tau).sub_(lse[b, i0:i0 + chunk]).exp_()
                a.mul_(grad[b, i0:i0 + chunk] / tau)  # S_kept x c
                out[b][:, i0:i0 + chunk] += fk @ a  # through f_i
                g_kept += fi @ a.t()  # through f_j
            out[b].index_add_(1, idx, g_kept)
        return out, None, None, None


def kept_pair_logsumexp(feats: Tensor, keep: Tensor, temperature: float,
                        chunk: int = LSE_CHUNK) -> Tensor:
    """``lse_i = log sum_{j kept} exp(<f_j, f_i> / tau)`` for every sample ``i``.

    Args:
        feats: ``B x C x S`` fp32 sample embeddings.
        keep: ``B x S`` bool, the samples ``j`` the sum runs over.
        temperature: ``tau``.
        chunk: anchors ``i`` per product (the logits are ``S_kept x chunk`` at a time).

    Returns:
        ``B x S``; 0 for an image with no kept sample. Forward and backward form the logits
        ``chunk`` anchors at a time and keep none of them: the S x S logits with a masking
        constant, their exp and their gradient took 0.8-1.5 s of one thread for 2 x 4096
        samples, mostly in memory traffic.
    """
    return _KeptPairLogSumExp.apply(feats, keep.bool(), float(temperature), int(chunk))


def pixelwise_instance_discrimination_loss(pixel_feats: Tensor,
                                           gt_masks: Tensor,
                                           num_samples: int = 4096,
                                           temperature: float = 0.3,
                                           generator: Optional[torch.Generator] = None
                                           ) -> Tensor:
    """Pixel-to-pixel contrastive loss on area-balanced samples (kMaX-DeepLab PyTorch port).

    Draw ``S`` non-void pixels per image (:func:`area_weighted_sample` with
    ``P ~ (HW / area) ** SAMPLE_TEMPERATURE``; kMaX's ``PIXEL_INSDIS_SAMPLE_K = 4096`` /
    ``PIXEL_INSDIS_TEMPERATURE = 1.5``); for each drawn pixel ``i``:
    ``CE(softmax_j <f_i, f_j> / tau, same_ij / sum_j same_ij)`` over the drawn pixels ``j``
    (itself included), ``same_ij = <g_i, g_j>`` (1 when both lie in the same segment). Mean
    over the drawn pixels of each image, then over the batch. When an image has no more than
    ``S`` non-void pixels all of them are used and the loss is deterministic.

    Args:
        pixel_feats: ``B x C x H x W`` (or ``B x C x HW``) pixel embeddings, L2-normalised over
            ``C`` by the caller (the panoptic head normalises its mask features).
        gt_masks: ``B x M x H x W`` binary GT segments.
        num_samples: ``S``.
        temperature: contrastive temperature ``tau`` (0.3).
        generator: optional ``torch.Generator`` for the draw.

    Returns:
        fp32 scalar.
    """
    f, g = _check(pixel_feats, gt_masks)
    with fp32_island(f):
        f = f.float()
        g = g.float()
        keep = g.sum(dim=1) >= 0.5  # B x HW
        idx, ok = area_weighted_sample(inverse_segment_area(g), keep, num_samples,
                                       SAMPLE_TEMPERATURE, generator)  # B x S
        gs = g.gather(2, idx.unsqueeze(1).expand(-1, g.shape[1], -1))  # B x M x S
        fs = f.gather(2, idx.unsqueeze(1).expand(-1, f.shape[1], -1))  # B x C x S
        okf = ok.float()
        # CE(softmax_j l_ij, same_ij / sum_j same_ij) = lse_i sum_j t_ij - sum_j t_ij l_ij with
        # same_ij = <g_i, g_j> ok_j; both target sums factor through the segments, so no
        # S x S target is built: sum_j same_ij l_ij = sum_m g_mi <f_i, F_m> / tau and
        # sum_j same_ij = sum_m g_mi n_m, with F_m / n_m the sum / count of the kept samples
        # of segment m
        gk = gs * okf.unsqueeze(1)  # B x M x S, kept samples only
        seg_sum = torch.einsum('bcs,bms->bmc', fs, gk)  # B x M x C
        num = (torch.einsum('bmc,bcs->bms', seg_sum, fs) * gs).sum(dim=1) / temperature
        den = torch.einsum('bms,bm->bs', gs, gk.sum(dim=2))  # B x S(i)
        lse = kept_pair_logsumexp(fs, ok, temperature)  # B x S(i), over the kept j
        norm = den.clamp(min=1.0)
        ce = lse * (den / norm) - num / norm  # B x S(i)
        return per_image_mean(ce, okf)


__all__ = ['pixelwise_instance_discrimination_loss', 'kept_pair_logsumexp']
