"""Pure-function superpixel losses for dense soft pixel-to-cluster assignments.

Conventions (shared by every function here):

- ``assign``: ``B x K x N`` soft assignment of ``N = H * W`` pixels (row-major, pixel
  ``i = y * W + x``) to ``K`` clusters. Each column is a distribution over ``K``
  (softmax over the cluster axis).
- ``valid``: optional boolean ``B x N`` (or ``B x H x W``) mask; ``False`` marks padding or
  ignored pixels. Invalid pixels neither contribute to cluster means nor to the loss.
- All softmax/log/einsum maths runs in fp32 (inputs are cast with ``.float()``), so the
  functions are safe under autocast and always return fp32 tensors.

The SLIC loss follows SSFCN (Yang et al., "Superpixel Segmentation with Fully Convolutional
Networks", CVPR 2020), which reconstructs pixel features through the 9 neighbouring grid
cells. Both forms are here: ``assign`` a dense ``B x K x N`` tensor (every pixel reconstructed
through all ``K`` clusters), or a :class:`~clustseg.models.layers.local_em.LocalAssignment`
(``B x K x 9 x P``: each pixel through the 9 centers of its own and the neighbouring grid
cells, O(9 N) memory, no ``K x N`` map). On a local assignment the value equals that of the
dense form on ``assign.to_dense()`` (zero outside the candidates).
"""
import math
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from ..layers.local_em import LocalAssignment

# sRGB (D65) linear RGB -> CIE XYZ matrix and the D65 reference white.
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)
_D65_WHITE = (0.95047, 1.0, 1.08883)

#: Scale applied by :func:`lab_target` to (L, a, b).
LAB_SCALE = (100.0, 110.0, 110.0)


def _shape(t: Tensor) -> str:
    return 'x'.join(str(s) for s in t.shape)


def _check_assign(assign: Tensor) -> None:
    if not isinstance(assign, Tensor) or assign.dim() != 3:
        raise ValueError('assign must be a B x K x N tensor, got shape '
                         f'{_shape(assign) if isinstance(assign, Tensor) else type(assign)}')


def _flat_valid(valid: Optional[Tensor], b: int, n: int,
                device: torch.device) -> Tensor:
    """Return a boolean ``B x N`` validity mask (all True when ``valid`` is None)."""
    if valid is None:
        return torch.ones(b, n, dtype=torch.bool, device=device)
    if valid.dim() == 3:
        valid = valid.flatten(1)
    if valid.dim() != 2 or valid.shape[0] != b or valid.shape[1] != n:
        raise ValueError(f'valid must be B x N (or B x H x W with H*W = N) = {b} x {n}, '
                         f'got shape {_shape(valid)}')
    return valid.to(device=device, dtype=torch.bool)


def pixel_coords(h: int, w: int, device=None, dtype=torch.float32) -> Tensor:
    """Pixel-centre coordinates in pixel units, row-major.

    Returns ``N x 2`` with columns ``(x, y)``, ``x in [0, w-1]``, ``y in [0, h-1]``,
    row ``i = y * w + x`` (same flattening as ``assign``).
    """
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype),
                            torch.arange(w, device=device, dtype=dtype), indexing='ij')
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)  # N x 2


def cluster_means(assign: Tensor, feats: Tensor, valid: Optional[Tensor] = None,
                  eps: float = 1e-8) -> Tensor:
    """Soft cluster means ``c_k = sum_i A_ki f_i / sum_i A_ki`` over valid pixels.

    Args:
        assign: ``B x K x N`` soft assignment.
        feats: ``B x N x C`` (or ``N x C``, shared by the batch) per-pixel features.
        valid: optional ``B x N`` boolean mask.
        eps: added to the cluster mass in the denominator.

    Returns:
        ``B x K x C`` fp32 cluster means (0 for clusters with no valid mass).
    """
    _check_assign(assign)
    b, _, n = assign.shape
    if feats.dim() == 2:
        feats = feats.unsqueeze(0).expand(b, -1, -1)
    if feats.dim() != 3 or feats.shape[0] != b or feats.shape[1] != n:
        raise ValueError(f'feats must be B x N x C with B x N = {b} x {n}, '
                         f'got shape {_shape(feats)}')
    a = assign.float()
    if valid is not None:
        a = a * _flat_valid(valid, b, n, a.device).unsqueeze(1).to(a.dtype)
    mass = a.sum(dim=2, keepdim=True)  # B x K x 1
    summed = torch.einsum('bkn,bnc->bkc', a, feats.float())  # B x K x C
    return summed / (mass + eps)


def soft_reconstruct(assign: Tensor, feats: Tensor, valid: Optional[Tensor] = None,
                     eps: float = 1e-8) -> Tensor:
    """Reconstruct pixel features through the superpixels.

    ``c = cluster_means(assign, feats, valid)`` (``B x K x C``, valid pixels only), then
    ``f_hat_i = sum_k A_ki c_k``. Dense version of SSFCN's pool/unpool reconstruction
    (SSFCN only uses the 9 neighbouring grid cells).

    Returns:
        ``B x N x C`` fp32 reconstruction (defined for every pixel, valid or not).
    """
    means = cluster_means(assign, feats, valid, eps)  # B x K x C
    return torch.einsum('bkn,bkc->bnc', assign.float(), means)  # B x N x C


def remap_labels(labels: Tensor, valid: Tensor):
    """Per-image remap of arbitrary int64 region ids to ``0..R_b-1``.

    Args:
        labels: ``B x N`` integer region ids.
        valid: ``B x N`` boolean mask; invalid pixels are mapped to 0 and not counted.

    Returns:
        ``(local, num_regions)``: ``B x N`` int64 ids in ``0..R_b-1`` and the ``B``
        region counts ``R_b``. Vectorised (two ``torch.unique`` calls, no per-image loop).
    """
    b = labels.shape[0]
    local = torch.zeros_like(labels, dtype=torch.long)
    vals = labels[valid].long()  # M
    if vals.numel() == 0:
        return local, torch.zeros(b, dtype=torch.long, device=labels.device)
    bidx = torch.arange(b, device=labels.device).unsqueeze(1).expand_as(labels)[valid]  # M
    # global ids 0..G-1 first, so that the (image, region) key cannot overflow
    _, g_inv = torch.unique(vals, return_inverse=True)
    num_global = int(g_inv.max()) + 1
    keys, k_inv = torch.unique(bidx * num_global + g_inv, return_inverse=True)
    counts = torch.bincount(keys // num_global, minlength=b)  # R_b per image
    offsets = torch.cumsum(counts, 0) - counts
    local[valid] = k_inv - offsets[bidx]
    return local, counts


def _grid_interval(valid: Tensor, num_clusters: int,
                   S: Optional[Union[float, Tensor]]) -> Tensor:
    """Per-image grid interval ``S`` (``B``), default ``sqrt(N / K)`` pixels with ``N`` all
    pixels of the map (``valid``: ``B x N``): the spacing of the K seeds, which the grid
    places over the whole map, padding and ignored pixels included."""
    b = valid.shape[0]
    if S is None:
        s = torch.full((b, ), math.sqrt(valid.shape[1] / float(num_clusters)),
                       device=valid.device)
    else:
        s = torch.as_tensor(S, dtype=torch.float32, device=valid.device)
        if s.dim() == 0:
            s = s.expand(b)
        if s.shape != (b, ):
            raise ValueError(f'S must be a scalar or a tensor of shape ({b},), '
                             f'got shape {tuple(s.shape)}')
    return s.clamp(min=1e-6)


def slic_loss(assign: Tensor,
              labels: Tensor,
              coords: Tensor,
              valid: Optional[Tensor] = None,
              m: float = 0.003,
              S: Optional[Union[float, Tensor]] = None,
              ignore_index: int = -1,
              eps: float = 1e-8) -> Dict[str, Tensor]:
    """Dense SSFCN SLIC loss: label cross-entropy + (m / S) * position error.

    Features are ``[one-hot(region), x, y]``; they are reconstructed through the clusters
    (:func:`soft_reconstruct`, cluster means over valid pixels) and compared per pixel:

    - ``sem``: ``-sum_c y_ic log(f_hat_ic + eps)`` = ``-log(f_hat_{i, label_i} + eps)``;
    - ``pos``: ``(m / S) * ||p_hat_i - p_i||_2`` (L2 norm, not squared), p in pixels.

    Both are averaged over all valid pixels of the batch. Region ids are arbitrary int64
    (non-contiguous, thousands are fine) and remapped per image to ``0..R_b-1``; the one-hot
    is ``B x N x R_max`` (never ``B x N x K x R``).

    Defaults (checked against fuy34/superpixel_fcn, ``loss.py`` / ``train_util.py`` /
    ``main.py``): SSFCN builds the xy features as raw pixel indices (``np.arange`` over the
    image, not normalised), uses ``S = kernel_size = --downsize = 16`` pixels, i.e. the grid
    interval (208 x 208 crops -> 13 x 13 cells, ``sqrt(N / K) = 16``), and
    ``m = --pos_weight = 0.003``. It sums both terms over pixels (divided by batch size),
    so both share one normalisation; averaging both over valid pixels keeps their ratio.
    Our coordinates are in the same pixel units and ``S`` defaults to the same grid interval
    ``sqrt(N / K)`` (``N`` all pixels of the map, padding included: the seeds' spacing, also the
    unit of the embedding head's and the grid initializer's positions), so ``m = 0.003``
    reproduces SSFCN's balance: a pixel one
    grid cell away from its reconstructed position costs ``m = 0.003`` (SSFCN additionally
    scales the whole loss by 0.005; that is left to ``loss_weight``).

    Args:
        assign: ``B x K x N`` soft assignment, or a ``LocalAssignment``
            (:func:`local_slic_loss`).
        labels: ``B x N`` (or ``B x H x W``) int region ids; ``ignore_index`` = ignored.
        coords: ``N x 2`` pixel coordinates ``(x, y)`` (see :func:`pixel_coords`).
        valid: optional ``B x N`` (or ``B x H x W``) boolean mask of valid pixels.
        m: position weight (SSFCN ``pos_weight``).
        S: grid interval in pixels; scalar, ``B`` tensor, or None for ``sqrt(N / K)``.
        ignore_index: label value excluded from the loss.
        eps: added inside the log and to the cluster masses.

    Returns:
        dict of fp32 scalars: ``'sem'`` (label term), ``'pos'`` (weighted position term,
        already multiplied by ``m / S``) and ``'total'`` = ``sem + pos``.
    """
    if isinstance(assign, LocalAssignment):
        return local_slic_loss(assign, labels, coords, valid, m, S, ignore_index, eps)
    _check_assign(assign)
    b, k, n = assign.shape
    if labels.dim() == 3:
        labels = labels.flatten(1)
    if labels.dim() != 2 or labels.shape[0] != b or labels.shape[1] != n:
        raise ValueError(f'labels must be B x N (or B x H x W with H*W = N) = {b} x {n}, '
                         f'got shape {_shape(labels)}')
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f'labels must be an integer tensor, got dtype {labels.dtype}')
    if coords.dim() != 2 or coords.shape[0] != n or coords.shape[1] != 2:
        raise ValueError(f'coords must be N x 2 = {n} x 2, got shape {_shape(coords)}')
    device = assign.device
    labels = labels.to(device)
    mask = _flat_valid(valid, b, n, device) & (labels != ignore_index)  # B x N

    local, _ = remap_labels(labels, mask)
    num_regions = int(local.max()) + 1 if bool(mask.any()) else 1
    onehot = torch.zeros(b, n, num_regions, device=device, dtype=torch.float32)
    onehot.scatter_(2, local.unsqueeze(2), mask.unsqueeze(2).float())  # B x N x R
    xy = coords.to(device=device, dtype=torch.float32).unsqueeze(0).expand(b, -1, -1)
    feats = torch.cat([onehot, xy], dim=2)  # B x N x (R + 2)

    recon = soft_reconstruct(assign, feats, mask, eps)  # B x N x (R + 2)
    p_label = recon[..., :num_regions].gather(2, local.unsqueeze(2)).squeeze(2)  # B x N
    sem_map = -torch.log(p_label + eps)
    dist = torch.linalg.vector_norm(recon[..., num_regions:] - xy, ord=2, dim=2)  # B x N
    s = _grid_interval(mask, k, S)  # B
    pos_map = dist * (m / s).unsqueeze(1)

    zero = sem_map.new_zeros(())
    denom = mask.sum().clamp(min=1).float()
    sem = torch.where(mask, sem_map, zero).sum() / denom
    pos = torch.where(mask, pos_map, zero).sum() / denom
    return dict(sem=sem, pos=pos, total=sem + pos)


def reconstruction_loss(assign: Tensor,
                        target: Tensor,
                        valid: Optional[Tensor] = None,
                        beta: float = 1.0,
                        eps: float = 1e-8) -> Tensor:
    """Smooth-L1 between a per-pixel target and its reconstruction through the clusters.

    ``f_hat = soft_reconstruct(assign, target, valid)``; loss = mean over valid pixels and
    channels of ``smooth_l1(f_hat - target, beta)``. In ClustSeg ``target`` is the image
    colour from :func:`lab_target` (Lab scaled by 1/100, 1/110, 1/110), so the loss asks
    superpixels to be colour-homogeneous.

    Args:
        assign: ``B x K x N`` soft assignment, or a ``LocalAssignment``
            (:func:`local_reconstruction_loss`).
        target: ``B x N x C`` per-pixel target.
        valid: optional ``B x N`` (or ``B x H x W``) boolean mask.
        beta: smooth-L1 transition point (quadratic below ``beta``).

    Returns:
        fp32 scalar.
    """
    if isinstance(assign, LocalAssignment):
        return local_reconstruction_loss(assign, target, valid, beta, eps)
    _check_assign(assign)
    b, _, n = assign.shape
    if target.dim() != 3 or target.shape[0] != b or target.shape[1] != n:
        raise ValueError(f'target must be B x N x C with B x N = {b} x {n}, '
                         f'got shape {_shape(target)}')
    if beta < 0:
        raise ValueError(f'beta must be >= 0, got {beta}')
    mask = _flat_valid(valid, b, n, assign.device)
    target = target.float().to(assign.device)
    recon = soft_reconstruct(assign, target, mask, eps)  # B x N x C
    per = F.smooth_l1_loss(recon, target, reduction='none', beta=beta)  # B x N x C
    per = torch.where(mask.unsqueeze(2), per, per.new_zeros(()))
    denom = (mask.sum() * target.shape[2]).clamp(min=1).float()
    return per.sum() / denom



# ------------------------------------------------------------------ local (9-candidate) form
def _check_local(la: LocalAssignment, b: int, n: int, what: str, t: Tensor) -> None:
    g = la.grid
    if la.probs.dim() != 4 or la.probs.shape[1:] != (g.num_clusters, 9, g.slots):
        raise ValueError(f'LocalAssignment.probs must be B x K x 9 x P = ? x {g.num_clusters} '
                         f'x 9 x {g.slots}, got shape {_shape(la.probs)}')
    if b != la.probs.shape[0] or n != g.num_pixels:
        raise ValueError(f'{what} must be B x N = {la.probs.shape[0]} x {g.num_pixels} for this '
                         f'local assignment, got shape {_shape(t)}')


def local_cluster_means(la: LocalAssignment, feats_s: Tensor, mask_s: Tensor,
                        eps: float = 1e-8) -> Tensor:
    """Soft cluster means over masked pixels from a local assignment.

    Args:
        la: probs ``B x K x 9 x P`` on its grid. feats_s: ``B x K x P x C`` slot features
            (``grid.gather``). mask_s: ``B x K x P`` bool.

    Returns:
        ``B x K x C`` fp32 (0 for clusters without mass).
    """
    g = la.grid
    a = la.probs.float() * mask_s[:, :, None, :].float()  # B x K x 9 x P
    num = g.to_centers(torch.matmul(a, feats_s.float()))  # B x K x C
    mass = g.to_centers(a.sum(-1))  # B x K
    return num / (mass[..., None] + eps)


def local_soft_reconstruct(la: LocalAssignment, feats_s: Tensor, mask_s: Tensor,
                           eps: float = 1e-8) -> Tensor:
    """Reconstruction of slot features through each pixel's 9 candidate clusters:
    ``f_hat_i = sum_j M_ij c_j`` -> ``B x K x P x C`` (the slot layout of ``feats_s``)."""
    means = local_cluster_means(la, feats_s, mask_s, eps)  # B x K x C
    return torch.matmul(la.probs.float().transpose(-1, -2),
                        la.grid.from_centers(means))  # B x K x P x C


def local_slic_loss(la: LocalAssignment, labels: Tensor, coords: Tensor,
                    valid: Optional[Tensor] = None, m: float = 0.003,
                    S: Optional[Union[float, Tensor]] = None, ignore_index: int = -1,
                    eps: float = 1e-8) -> Dict[str, Tensor]:
    """:func:`slic_loss` on a local assignment, without one-hot maps: the label histogram of
    each cluster is a ``B x K x R`` scatter-add of the 9 N memberships, and each pixel reads
    the probability of its own label from its 9 candidates (O(9 N + K R) memory).

    Args as :func:`slic_loss` (``labels`` / ``valid`` ``B x N`` or ``B x H x W``, ``coords``
    ``N x 2``). Returns the same dict (``sem``, ``pos``, ``total``).
    """
    g = la.grid
    b = la.probs.shape[0]
    if labels.dim() == 3:
        labels = labels.flatten(1)
    _check_local(la, labels.shape[0], labels.shape[-1], 'labels', labels)
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f'labels must be an integer tensor, got dtype {labels.dtype}')
    n = g.num_pixels
    if coords.dim() != 2 or coords.shape[0] != n or coords.shape[1] != 2:
        raise ValueError(f'coords must be N x 2 = {n} x 2, got shape {_shape(coords)}')
    probs = la.probs.float()
    device = probs.device
    labels = labels.to(device)
    mask = _flat_valid(valid, b, n, device) & (labels != ignore_index)  # B x N
    local, _ = remap_labels(labels, mask)
    num_regions = int(local.max()) + 1 if bool(mask.any()) else 1
    mask_s = g.gather(mask)  # B x K x P
    lbl_s = g.gather(local)  # B x K x P
    a = probs * mask_s[:, :, None, :].float()  # B x K x 9 x P
    mass = g.to_centers(a.sum(-1))  # B x K
    # label histograms of the clusters: B x (K R), entry (center, label)
    idx = (g.cand[None, :, :, None] * num_regions + lbl_s[:, :, None, :]).flatten(1)  # B x K9P
    hist = a.new_zeros(b, g.num_clusters * num_regions).scatter_add_(1, idx, a.flatten(1))
    frac = hist.gather(1, idx).view_as(probs) / (g.from_centers(mass)[..., None] + eps)
    p_label = (probs * frac).sum(2)  # B x K x P
    sem_map = -torch.log(p_label + eps)
    xy = g.gather(coords.to(device=device, dtype=torch.float32)[None]).expand(b, -1, -1, -1)
    xy_hat = local_soft_reconstruct(la, xy, mask_s, eps)  # B x K x P x 2
    dist = torch.linalg.vector_norm(xy_hat - xy, ord=2, dim=-1)  # B x K x P
    s = _grid_interval(mask, g.num_clusters, S)  # B
    pos_map = dist * (m / s)[:, None, None]
    zero = sem_map.new_zeros(())
    denom = mask.sum().clamp(min=1).float()
    sem = torch.where(mask_s, sem_map, zero).sum() / denom
    pos = torch.where(mask_s, pos_map, zero).sum() / denom
    return dict(sem=sem, pos=pos, total=sem + pos)


def local_reconstruction_loss(la: LocalAssignment, target: Tensor,
                              valid: Optional[Tensor] = None, beta: float = 1.0,
                              eps: float = 1e-8) -> Tensor:
    """:func:`reconstruction_loss` on a local assignment (``target`` ``B x N x C``)."""
    g = la.grid
    if target.dim() != 3:
        raise ValueError(f'target must be B x N x C, got shape {_shape(target)}')
    _check_local(la, target.shape[0], target.shape[1], 'target', target)
    if beta < 0:
        raise ValueError(f'beta must be >= 0, got {beta}')
    b, n = target.shape[:2]
    mask = _flat_valid(valid, b, n, la.probs.device)
    mask_s = g.gather(mask)  # B x K x P
    t = g.gather(target.float().to(la.probs.device))  # B x K x P x C
    recon = local_soft_reconstruct(la, t, mask_s, eps)  # B x K x P x C
    per = F.smooth_l1_loss(recon, t, reduction='none', beta=beta)
    per = torch.where(mask_s[..., None], per, per.new_zeros(()))
    denom = (mask.sum() * target.shape[2]).clamp(min=1).float()
    return per.sum() / denom


def _srgb_linear(rgb: Tensor) -> Tensor:
    """sRGB gamma expansion of values in [0, 1] (clamped)."""
    rgb = rgb.float().clamp(0.0, 1.0)
    # clamp inside pow keeps gradients finite at 0
    return torch.where(rgb > 0.04045,
                       ((rgb.clamp(min=0.04045) + 0.055) / 1.055)**2.4, rgb / 12.92)


def _linear_to_lab(lin: Tensor) -> Tensor:
    """Linear sRGB ``B x 3 x H x W`` -> CIE Lab (D65), fp32."""
    mat = torch.tensor(_RGB_TO_XYZ, dtype=torch.float32, device=lin.device)
    white = torch.tensor(_D65_WHITE, dtype=torch.float32, device=lin.device)
    xyz = torch.einsum('cd,bdhw->bchw', mat / white.view(3, 1), lin)
    delta = 6.0 / 29.0
    # cube root as exp(log / 3): within 2 ulp of pow(1/3), about twice as fast on CPU
    f = torch.where(xyz > delta**3,
                    torch.exp(torch.log(xyz.clamp(min=delta**3)) * (1.0 / 3.0)),
                    xyz / (3.0 * delta**2) + 4.0 / 29.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


def rgb_to_lab(img: Tensor) -> Tensor:
    """sRGB (D65) to CIE Lab.

    Args:
        img: ``B x 3 x H x W`` RGB in ``[0, 1]`` (values are clamped to that range).

    Returns:
        ``B x 3 x H x W`` fp32 Lab: L in ``[0, 100]``, a and b roughly ``[-128, 127]``
        (``[-86, 98]`` / ``[-108, 95]`` for the sRGB gamut).
    """
    if not isinstance(img, Tensor) or img.dim() != 4 or img.shape[1] != 3:
        raise ValueError('img must be a B x 3 x H x W tensor, got shape '
                         f'{_shape(img) if isinstance(img, Tensor) else type(img)}')
    return _linear_to_lab(_srgb_linear(img))


_LINEAR_LUT = {}


def _linear_lut(device) -> Tensor:
    """The 256 gamma-expanded 8-bit levels (the exact formula at v / 255), per device."""
    key = str(device)
    if key not in _LINEAR_LUT:
        _LINEAR_LUT[key] = _srgb_linear(torch.arange(256, dtype=torch.float32) / 255.0).to(
            device)
    return _LINEAR_LUT[key]


def lab_target(img: Tensor, bgr: bool = True) -> Tensor:
    """Scaled Lab colour target for :func:`reconstruction_loss`.

    Args:
        img: ``B x 3 x H x W`` un-normalised image in ``[0, 255]`` (uint8 or float), BGR
            channel order by default (as ``inputs`` from ``PackSuperpixelInputs``).
        bgr: set False for RGB input.

    Returns:
        ``B x 3 x H x W`` fp32 ``(L / 100, a / 110, b / 110)``: L in ``[0, 1]`` and a, b in
        about ``[-0.98, 0.9]`` for sRGB colours, i.e. roughly unit range.

    An image of 8-bit levels (every value within 1e-3 of an integer in [0, 255], e.g. a
    de-normalised uint8 input) without gradient takes the gamma expansion from a 256-entry
    table of the same formula (one gather instead of two full-resolution ``pow`` passes).
    """
    if not isinstance(img, Tensor) or img.dim() != 4 or img.shape[1] != 3:
        raise ValueError('img must be a B x 3 x H x W tensor, got shape '
                         f'{_shape(img) if isinstance(img, Tensor) else type(img)}')
    if bgr:
        img = img.flip(1)
    lin = None
    if not img.requires_grad:
        x = img.float()
        levels = x.round()
        lo, hi = torch.aminmax(levels)
        if float((x - levels).abs().max()) <= 1e-3 and 0 <= float(lo) and float(hi) <= 255:
            lin = _linear_lut(img.device)[levels.long()]
    if lin is None:
        lin = _srgb_linear(img.float() / 255.0)
    lab = _linear_to_lab(lin)
    scale = torch.tensor(LAB_SCALE, dtype=torch.float32, device=lab.device)
    return lab / scale.view(1, 3, 1, 1)


__all__ = [
    'pixel_coords', 'cluster_means', 'soft_reconstruct', 'remap_labels', 'slic_loss',
    'reconstruction_loss', 'rgb_to_lab', 'lab_target', 'LAB_SCALE', 'local_cluster_means',
    'local_soft_reconstruct', 'local_slic_loss', 'local_reconstruction_loss'
]
