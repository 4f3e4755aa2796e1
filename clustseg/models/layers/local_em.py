"""Local E/M at full resolution: every pixel is assigned among the centers of its own grid cell
and the 8 neighbouring cells (the SSN / SSFCN neighbourhood), O(9 HW) memory and time per round
instead of the O(K HW) of a dense softmax over all K centers.

Pure PyTorch (index_select / matmul / index_add), no custom op.

Layout. The K seeds are those of :class:`~clustseg.models.initializers.GridInitializer`:
``grid_row_counts(K, fh, fw)`` rows on the fh x fw map the seeds are sampled from, row j holding
n_j seeds (n_j in {floor(K/r), ceil(K/r)}), seed k in raster order. At full resolution (H x W)
row j is the band ``[j H / r, (j + 1) H / r)`` and its cell c the span ``[c W / n_j,
(c + 1) W / n_j)``; a pixel belongs to the cell that contains its centre (+0.5), so there is
exactly one cell per seed and the actual K is the requested K. The 9 candidates of cell (j, c):
for each row j' in {j - 1, j, j + 1} the cell c' of row j' that contains the x-centre of (j, c),
and c' - 1, c' + 1 (absent ones masked). When every row holds the same number of seeds this is
the 3 x 3 neighbourhood of SSN.

Pixels are stored cell-major in K x P slots (P = the largest cell's pixel count, about
(H / r + 1)(W / n + 1), so K P stays within a small factor of HW for every K), so that an E-step
is one batched matmul per cell: slot features are ``B x K x P x C`` and local maps
``B x K x 9 x P`` (cell, candidate, slot; the softmax runs over the candidate axis).
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from .seed_grid import grid_row_counts

_CACHE = {}
_CACHE_SIZE = 32


class LocalGrid:
    """Cell layout of K grid seeds over an H x W image and each cell's 9 candidate centers.

    Attributes:
        num_clusters (int): K (= number of cells). hw: (H, W). row_counts: list of n_j.
        slot_pix: K x P long, pixel index (y W + x) of each slot; N for an empty slot.
        slot_ok: K x P bool, the slot holds a pixel.
        pix_slot: N long, flat slot index (k P + p) of each pixel.
        cand: K x 9 long, candidate center of each (cell, neighbour); own cell where absent.
        cand_ok: K x 9 bool. Candidate 4 is the cell itself.
        absent_bias: K x 9 float, 0 for a candidate, -inf where absent (added to logits).
    """

    def __init__(self, num_clusters, feat_hw, hw, device=None):
        k = int(num_clusters)
        fh, fw = feat_hw
        h, w = hw
        counts = grid_row_counts(k, fh, fw)
        rows = len(counts)
        self.num_clusters, self.hw, self.row_counts = k, (h, w), counts
        n_pix = h * w
        cnt = torch.tensor(counts, dtype=torch.long)
        offs = torch.cumsum(cnt, 0) - cnt
        # cell of every pixel (float64: exact floors for any realistic size)
        ys = (torch.arange(h, dtype=torch.float64) + 0.5) * rows / h
        r = ys.floor().long().clamp_(max=rows - 1)  # H
        n_r = cnt[r].double()  # H
        xs = torch.arange(w, dtype=torch.float64) + 0.5
        c = torch.minimum((xs[None] * n_r[:, None] / w).floor().long(), cnt[r][:, None] - 1)
        cell = (offs[r][:, None] + c).flatten()  # N
        # cell-major slots
        order = torch.argsort(cell, stable=True)
        per = torch.bincount(cell, minlength=k)
        p = max(1, int(per.max()))
        start = torch.cumsum(per, 0) - per
        cs = cell[order]
        flat = cs * p + (torch.arange(n_pix) - start[cs])
        slot_pix = torch.full((k * p,), n_pix, dtype=torch.long)
        slot_pix[flat] = order
        pix_slot = torch.empty(n_pix, dtype=torch.long)
        pix_slot[order] = flat
        # candidates: rows j-1, j, j+1; in each, the column holding the cell's x-centre +-1
        row_of = torch.repeat_interleave(torch.arange(rows), cnt)  # K
        col_of = torch.arange(k) - offs[row_of]
        cand, ok = [], []
        for dr in (-1, 0, 1):
            rr = row_of + dr
            rvalid = (rr >= 0) & (rr < rows)
            rrc = rr.clamp(0, rows - 1)
            n_rr = cnt[rrc]
            cc = ((col_of.double() + 0.5) * n_rr.double() / cnt[row_of].double()).floor().long()
            for dc in (-1, 0, 1):
                col = cc + dc
                v = rvalid & (col >= 0) & (col < n_rr)
                cand.append(torch.where(v, offs[rrc] + col.clamp(min=0), torch.arange(k)))
                ok.append(v)
        self.slots = p
        self.slot_pix = slot_pix.view(k, p).to(device)
        self.slot_ok = self.slot_pix < n_pix
        self.pix_slot = pix_slot.to(device)
        self.cand = torch.stack(cand, 1).to(device)  # K x 9
        self.cand_ok = torch.stack(ok, 1).to(device)  # K x 9
        self.absent_bias = torch.zeros(k, 9, device=device).masked_fill(~self.cand_ok,
                                                                        float('-inf'))

    @property
    def num_pixels(self):
        return self.hw[0] * self.hw[1]

    def gather(self, x: Tensor) -> Tensor:
        """Per-pixel values -> slots: B x N x C -> B x K x P x C, or B x N -> B x K x P (zero /
        False on empty slots)."""
        squeeze = x.dim() == 2
        if squeeze:
            x = x[..., None]
        pad = torch.zeros_like(x[:, :1])
        out = torch.cat([x, pad], 1).index_select(1, self.slot_pix.flatten())
        out = out.view(x.shape[0], self.num_clusters, self.slots, x.shape[-1])
        return out[..., 0] if squeeze else out

    def scatter(self, s: Tensor) -> Tensor:
        """Slots -> pixels: B x K x P [x C] -> B x N [x C]."""
        return s.flatten(1, 2).index_select(1, self.pix_slot)

    def candidate_labels(self, local: Tensor) -> Tensor:
        """Hard assignment: argmax over the 9 candidates of B x K x 9 x P -> B x N center ids."""
        j = local.max(2).indices  # B x K x P (max over a middle dim is ~6x faster than argmax)
        ids = self.cand[None].expand(local.shape[0], -1, -1).gather(2, j)
        return self.scatter(ids)

    def to_dense(self, local: Tensor, fill: float = 0.0) -> Tensor:
        """B x K x 9 x P -> B x K x N (``fill`` outside each pixel's candidates)."""
        b, k, n = local.shape[0], self.num_clusters, self.num_pixels
        keep = (self.cand_ok[:, :, None] & self.slot_ok[:, None, :]).flatten()  # K 9 P
        idx = (self.cand[:, :, None] * n + self.slot_pix[:, None, :]).flatten()[keep]
        dense = local.new_full((b, k * n), fill)
        dense = dense.index_copy(1, idx, local.flatten(1)[:, keep])
        return dense.view(b, k, n)

    def to_centers(self, per_cand: Tensor) -> Tensor:
        """Sum (cell, candidate) contributions into their centers: B x K x 9 [x C] -> B x K [x C]."""
        shape = (per_cand.shape[0], self.num_clusters) + tuple(per_cand.shape[3:])
        return per_cand.new_zeros(shape).index_add(1, self.cand.flatten(), per_cand.flatten(1, 2))

    def from_centers(self, x: Tensor) -> Tensor:
        """Each cell's candidate values: B x K [x C] -> B x K x 9 [x C]."""
        out = x.index_select(1, self.cand.flatten())
        return out.view((x.shape[0], self.num_clusters, 9) + tuple(x.shape[2:]))


def local_grid(num_clusters, feat_hw, hw, device=None) -> LocalGrid:
    """Cached :class:`LocalGrid` (keyed by K, the seed map's and the image's sizes, device)."""
    key = (int(num_clusters), tuple(feat_hw), tuple(hw), str(device))
    grid = _CACHE.get(key)
    if grid is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        grid = _CACHE[key] = LocalGrid(num_clusters, feat_hw, hw, device)
    return grid


class LocalAssignment(NamedTuple):
    """A sparse soft assignment: ``probs`` B x K x 9 x P (each valid slot's distribution over
    its candidates, zero on empty / padded slots) on ``grid``."""
    probs: Tensor
    grid: LocalGrid

    def to_dense(self) -> Tensor:
        return self.grid.to_dense(self.probs)


def local_em(centers: Tensor, keys: Tensor, values: Tensor, grid: LocalGrid, q_fn, num_iters: int,
             variant, num_heads: int = 1, key_padding_mask: Optional[Tensor] = None,
             scale: float = 1.0, center_norm_bias: bool = False, eps: float = 1e-6, return_all: bool = True, last_m_step: bool = True,
             last_probs: bool = True) -> dict:
    """``num_iters`` local E/M rounds: the local form of :class:`RecurrentCrossAttention`, the
    one implementation behind its ``grid`` argument (decoder levels in ``local_levels`` and the
    superpixel segmentor's full-resolution rounds).

    E-step, per head: ``logit_ij = s q_j . k_i (- s |q_j|^2 / 2 with center_norm_bias)`` for the
    9 candidate centers j of pixel i (absent candidates -inf); ``probs`` = softmax over those 9;
    the M-step's assignment is ``variant.assign`` of them (it must declare ``supports_local``).
    M-step: ``c_j = sum_i M_ij v_i / (sum_i M_ij + eps)`` (not divided when the variant is not
    ``mass_normalised``) over the pixels that have j among their candidates.

    Args:
        centers: B x K x D. keys, values: B x N x D projected pixel features (may be the same
            tensor: identity K / V; gathered once then).
        grid: :func:`local_grid` of (K, seed map size, (H, W)), N = H W.
        q_fn: callable, centers B x K x D -> queries B x K x D (projection, positions).
        variant: an :class:`~clustseg.models.e_steps.EStepVariant`.
        num_heads: h; D must be divisible by it.
        key_padding_mask: B x N bool, True = padding (no assignment, not in the M-step).
        return_all: keep the maps of every round (else only the last one's).
        last_m_step: run the M-step after the last E-step (``centers`` is None otherwise).
        last_probs: compute the last round's softmax (None in ``probs`` otherwise: a hard
            assignment needs only the logits).

    Returns:
        dict(centers=B x K x D or None, iter_centers=[B x K x D per M-step], and per kept round
        ``logits`` (-inf on absent candidates), ``assigns`` and ``probs`` (zero on empty /
        padded slots), each B x K x h x 9 x P, grid=grid).
    """
    b, k, dims = centers.shape
    if k != grid.num_clusters:
        raise ValueError(f'local E-step: {k} centers for a grid of {grid.num_clusters} cells')
    if keys.shape[1] != grid.num_pixels:
        raise ValueError(f'local E-step: {keys.shape[1]} pixels for a grid of {grid.hw} pixels')
    if not variant.supports_local:
        raise ValueError(f'the {type(variant).__name__} E-step has no local form (its '
                         'supports_local is False)')
    h = num_heads
    d = dims // h
    p = grid.slots
    with torch.autocast(device_type=centers.device.type, enabled=False):
        xk = grid.gather(keys.float())  # B x K x P x D
        xv = xk if values is keys else grid.gather(values.float())
        kt = xk.view(b, k, p, h, d).permute(0, 1, 3, 4, 2).reshape(b * k * h, d, p)
        v = xv.view(b, k, p, h, d).transpose(2, 3)  # B x K x h x P x d
        ok = grid.slot_ok[None].expand(b, -1, -1)  # B x K x P
        if key_padding_mask is not None:
            ok = ok & grid.gather(~key_padding_mask.reshape(b, -1))
        ok = ok[:, :, None, None, :]  # B x K x 1 x 1 x P
        okf, pad = ok.float(), ~ok
        absent = grid.absent_bias[None, :, None].expand(b, -1, h, -1)  # B x K x h x 9
        c = centers.float()
        iter_centers, logits_all, assigns_all, probs_all = [], [], [], []
        out_c = None
        for t in range(num_iters):
            last = t == num_iters - 1
            run_m = not last or last_m_step
            qc = grid.from_centers(q_fn(c).float())  # B x K x 9 x D
            qc = qc.view(b, k, 9, h, d).transpose(2, 3)  # B x K x h x 9 x d
            bias = absent - (0.5 * scale) * qc.pow(2).sum(-1) if center_norm_bias else absent
            logits = torch.baddbmm(bias.reshape(b * k * h, 9, 1), qc.reshape(b * k * h, 9, d),
                                   kt, alpha=scale).view(b, k, h, 9, p)
            probs = assign = None
            if run_m or last_probs:
                probs = logits.softmax(3) * okf  # over the 9 candidate clusters
            if run_m:
                assign = variant.assign(logits, probs, pad, cluster_dim=3)
                num = torch.matmul(assign, v).permute(0, 1, 3, 2, 4)  # B x K x 9 x h x d
                c = grid.to_centers(num.reshape(b, k, 9, dims))  # B x K x D
                if variant.mass_normalised:
                    mass = grid.to_centers(assign.sum(-1).transpose(2, 3))  # B x K x h
                    mass = variant.m_step_mass(mass[..., None], eps)  # B x K x h x 1
                    c = (c.view(b, k, h, d) / mass).view(b, k, dims)
                iter_centers.append(c.to(centers.dtype))
                out_c = iter_centers[-1]
            if return_all or last:
                logits_all.append(logits)
                assigns_all.append(assign)
                probs_all.append(probs)
    return dict(centers=out_c, iter_centers=iter_centers, logits=logits_all,
                assigns=assigns_all, probs=probs_all, grid=grid)


__all__ = ['LocalGrid', 'LocalAssignment', 'local_grid', 'local_em']
