"""Recurrent cross-attention: T rounds of EM clustering with shared projections (Eq. 10)."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..utils.step_random import StepRandom

VARIANTS = ('recurrent', 'vanilla', 'kmeans', 'gumbel')
M_STEPS = ('mean', 'sum')


def check_choice(key, value, allowed):
    if value not in allowed:
        raise ValueError(f'{key}={value!r} is not supported; allowed values: {list(allowed)}')


def check_positive(key, value):
    if not isinstance(value, int) or value < 1:
        raise ValueError(f'{key} must be an integer >= 1, got {value!r}')


@MODELS.register_module()
class RecurrentCrossAttention(BaseModule):
    """Cluster centers attend to pixels; the E/M steps are repeated ``num_iters`` times.

    K and V are projected once from the pixel features; Q is re-projected from the centers at
    every iteration with the same weights, so the parameter count does not depend on T.

    * E-step (Eq. 10): ``M = softmax_K(scale * Q(C) K^T)`` per head (``variant='recurrent'``).
      ``'vanilla'`` is standard cross-attention, softmax over pixels (Eq. 5); ``'kmeans'`` is
      kMaX-DeepLab's hard assignment, one-hot of the argmax over K (no gradient through it);
      ``'gumbel'`` is the paper's k-means cross-attention of Table 4c: the one-hot argmax over K
      of Gumbel-perturbed logits in training, with the gradient of their softmax
      (straight-through Gumbel-softmax, temperature 1; the noise comes from checkpointed state,
      :class:`~clustseg.models.utils.step_random.StepRandom`), the plain argmax at test.
    * M-step: ``C = normalise(M) V``. With ``m_step='mean'`` (default) each center becomes the
      assignment-weighted *mean* of the values, ``C_k = sum_i M_ki V_i / (sum_i M_ki + eps)``,
      i.e. the EM update of Eq. 4 for soft memberships, whose scale does not grow with H x W.
      ``m_step='sum'`` is the literal ``M V`` of Eq. 10. The vanilla variant's rows already sum
      to 1 over pixels, so both options coincide for it.
    * ``center_norm_bias=True`` adds ``-||q_k||^2 / 2`` to the logits, turning the dot product
      into a negative squared distance (the softmax over K ignores the per-pixel ``||k_i||^2``):
      a Gaussian-mixture E-step.
    * Local form (``forward(..., grid=LocalGrid)``, superpixels): center k is tied to cell k of
      a :class:`~clustseg.models.layers.local_em.LocalGrid` and every pixel is assigned among
      the 9 centers of its own and the neighbouring cells only (softmax / argmax over those 9),
      O(9 N) instead of O(K N) per head; the M-step sums over the pixels that have the center
      among their candidates. 'recurrent' and 'kmeans' only (the vanilla softmax runs over
      pixels, which has no local counterpart here).
    * ``shared_iters=False`` (Table 5, "multiple non-recurrent cross-attention"): every round t
      has its own Q, K and V projections (K and V re-projected from the pixels each round), so
      the T rounds are T stacked one-step cross-attentions with unshared weights and the
      parameter count grows with T. Dense E-steps only.

    Args:
        embed_dims (int): D, channels of centers and pixel features.
        num_heads (int): heads; D must be divisible by it.
        num_iters (int): T >= 1.
        variant (str): 'recurrent' | 'vanilla' | 'kmeans' | 'gumbel'.
        m_step (str): 'mean' | 'sum'.
        kv_dims (int, optional): channels of the pixel features (default D).
        identity_kv (bool): use the pixel features themselves as K and V (no projection).
        center_norm_bias (bool): see above.
        scale (float, optional): logit scale, default 1/sqrt(D/num_heads).
        shared_iters (bool): one set of projections for all T rounds (default, Eq. 10) or one
            per round (Table 5).
    """

    def __init__(self, embed_dims, num_heads=8, num_iters=3, variant='recurrent', m_step='mean',
                 kv_dims=None, identity_kv=False, center_norm_bias=False, scale=None,
                 eps=1e-6, shared_iters=True, init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_iters', num_iters)
        check_positive('num_heads', num_heads)
        check_positive('embed_dims', embed_dims)
        check_choice('variant', variant, VARIANTS)
        check_choice('m_step', m_step, M_STEPS)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims={embed_dims} must be divisible by num_heads={num_heads}')
        kv_dims = kv_dims or embed_dims
        if identity_kv and kv_dims != embed_dims:
            raise ValueError('identity_kv=True needs kv_dims == embed_dims')
        self.embed_dims, self.num_heads, self.num_iters = embed_dims, num_heads, num_iters
        self.variant, self.m_step, self.eps = variant, m_step, eps
        self.center_norm_bias = center_norm_bias
        self.head_dims = embed_dims // num_heads
        self.scale = scale if scale is not None else self.head_dims ** -0.5
        self.identity_kv = identity_kv
        self.shared_iters = bool(shared_iters)
        if not self.shared_iters:
            if identity_kv:
                raise ValueError('shared_iters=False needs K / V projections (identity_kv=False)')
            # Table 5: round t has its own Q / K / V projections
            self.q_projs = nn.ModuleList(nn.Linear(embed_dims, embed_dims)
                                         for _ in range(num_iters))
            self.k_projs = nn.ModuleList(nn.Linear(kv_dims, embed_dims)
                                         for _ in range(num_iters))
            self.v_projs = nn.ModuleList(nn.Linear(kv_dims, embed_dims)
                                         for _ in range(num_iters))
        else:
            self.q_proj = nn.Linear(embed_dims, embed_dims)
            if identity_kv:
                self.k_proj = self.v_proj = nn.Identity()
            else:
                self.k_proj = nn.Linear(kv_dims, embed_dims)
                self.v_proj = nn.Linear(kv_dims, embed_dims)
        # the Gumbel noise of the 'gumbel' variant: drawn from checkpointed state
        self.rng = StepRandom() if variant == 'gumbel' else None

    def _split(self, x):  # B x L x D -> B x h x L x d
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dims).transpose(1, 2)

    def e_step(self, q, k, key_padding_mask=None):
        """q: B x h x K x d, k: B x h x N x d -> (logits, assignment, probs), each B x h x K x N.

        ``assignment`` drives the M-step (per variant); ``probs`` is always the softmax over
        the cluster axis of the logits (zero on padded pixels): the per-pixel distribution over
        clusters that losses supervise. For 'recurrent' the two are the same tensor; for
        'kmeans' the loss on ``probs`` is what trains the Q/K projections (as in kMaX-DeepLab,
        whose hard assignments come from logits that a mask loss supervises).
        """
        with torch.autocast(device_type=q.device.type, enabled=False):
            # computed pixel-major (B x h x N x K), so that the softmax over the clusters runs
            # over the contiguous last axis (about 2x faster on CPU than over dim -2); the
            # maps are returned as B x h x K x N views of it
            q, k = q.float(), k.float()
            logits = torch.einsum('bhnd,bhkd->bhnk', k, q * self.scale)
            if self.center_norm_bias:
                logits = logits - 0.5 * self.scale * q.pow(2).sum(-1).unsqueeze(2)
            pad = None if key_padding_mask is None else key_padding_mask[:, None, :, None]
            probs = logits.softmax(dim=-1)  # over clusters
            if pad is not None:
                probs = probs.masked_fill(pad, 0.0)
            if self.variant == 'recurrent':
                assign = probs
            elif self.variant == 'vanilla':
                masked = logits if pad is None else logits.masked_fill(pad, float('-inf'))
                assign = masked.softmax(dim=-2)  # over pixels
            elif self.variant == 'kmeans':  # hard cluster-wise argmax
                idx = logits.detach().argmax(dim=-1, keepdim=True)
                assign = torch.zeros_like(logits).scatter_(-1, idx, 1.0)
                if pad is not None:
                    assign = assign.masked_fill(pad, 0.0)
            elif self.variant == 'gumbel':
                assign = self._gumbel_assign(logits, pad)
            else:
                raise ValueError(f'variant {self.variant!r} has no E-step')
        logits, probs_t = logits.transpose(-1, -2), probs.transpose(-1, -2)
        return logits, (probs_t if assign is probs else assign.transpose(-1, -2)), probs_t

    def _gumbel_assign(self, logits, pad):
        """B x h x N x K logits -> one-hot over K (the argmax of the Gumbel-perturbed logits in
        training, of the logits at test); in training its gradient is that of the softmax of
        the perturbed logits (straight-through)."""
        if self.training:
            seed = int(torch.randint(2**62, (1, ), generator=self.rng.generator()))
            g = torch.Generator(device=logits.device)
            g.manual_seed(seed)
            u = torch.rand(logits.shape, generator=g, device=logits.device)
            gumbel = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
            logits = logits + gumbel
        idx = logits.detach().argmax(dim=-1, keepdim=True)
        assign = torch.zeros_like(logits).scatter_(-1, idx, 1.0)
        if self.training:
            soft = logits.softmax(dim=-1)
            assign = assign + (soft - soft.detach())  # exactly one-hot forward
        return assign if pad is None else assign.masked_fill(pad, 0.0)

    def _projections(self, t):
        """(q, k, v) projections of round ``t``."""
        if self.shared_iters:
            return self.q_proj, self.k_proj, self.v_proj
        return self.q_projs[t], self.k_projs[t], self.v_projs[t]

    def m_step_update(self, assign, v):
        """assign: B x h x K x N, v: B x h x N x d -> centers B x h x K x d (fp32)."""
        with torch.autocast(device_type=v.device.type, enabled=False):
            out = torch.einsum('bhkn,bhnd->bhkd', assign, v.float())
            if self.m_step == 'mean' and self.variant != 'vanilla':
                out = out / (assign.sum(-1, keepdim=True) + self.eps)
        return out

    def local_e_step(self, q, kg, grid, okf):
        """Local E-step. q: B x K x D (projected), kg: B x K x P x D (keys in the grid's slots),
        okf: B x K x 1 x 1 x P float (1 = a valid pixel in the slot) -> (logits, assignment,
        probs), each B x K x h x 9 x P (cell, head, candidate, slot)."""
        b, k_num, p, _ = kg.shape
        h, d = self.num_heads, self.head_dims
        with torch.autocast(device_type=q.device.type, enabled=False):
            qc = grid.from_centers(q.float()).view(b, k_num, 9, h, d).transpose(2, 3)
            kt = kg.float().view(b, k_num, p, h, d).permute(0, 1, 3, 4, 2)  # B x K x h x d x P
            logits = torch.matmul(qc, kt) * self.scale  # B x K x h x 9 x P
            logits = logits + grid.absent_bias[None, :, None, :, None]
            if self.center_norm_bias:
                logits = logits - 0.5 * self.scale * qc.pow(2).sum(-1, keepdim=True)
            probs = logits.softmax(dim=3) * okf  # over the 9 candidate clusters
            if self.variant == 'recurrent':
                assign = probs
            elif self.variant == 'kmeans':
                idx = logits.detach().argmax(dim=3, keepdim=True)
                assign = torch.zeros_like(logits).scatter_(3, idx, 1.0) * okf
            else:
                raise ValueError(f'variant {self.variant!r} has no local E-step')
        return logits, assign, probs

    def local_m_step(self, assign, vg, grid):
        """assign: B x K x h x 9 x P, vg: B x K x P x D -> centers B x K x D (fp32)."""
        b, k_num, p, _ = vg.shape
        h, d = self.num_heads, self.head_dims
        with torch.autocast(device_type=vg.device.type, enabled=False):
            v = vg.float().view(b, k_num, p, h, d).transpose(2, 3)  # B x K x h x P x d
            if self.m_step == 'mean':  # a ones column: the same matmul sums the mass
                v = torch.cat([v, v.new_ones(v.shape[:-1] + (1, ))], -1)
            e = v.shape[-1]
            num = torch.matmul(assign, v).permute(0, 1, 3, 2, 4)  # B x K x 9 x h x e
            out = grid.to_centers(num.reshape(b, k_num, 9, h * e)).view(b, k_num, h, e)
            if self.m_step == 'mean':
                out = out[..., :d] / (out[..., d:] + self.eps)
        return out.reshape(b, k_num, h * d)

    def _forward_local(self, centers, feats, grid, key_padding_mask, center_pos, feat_pos,
                       return_logits, return_maps=True):
        """:meth:`forward` with ``grid``: maps are B x K x 9 x P (head-averaged)."""
        if self.variant not in ('recurrent', 'kmeans') or not self.shared_iters:
            raise ValueError("the local E-step supports variant='recurrent' or 'kmeans' with "
                             f'shared_iters=True, not variant={self.variant!r} / shared_iters='
                             f'{self.shared_iters}')
        b, k_num, _ = centers.shape
        if k_num != grid.num_clusters or feats.shape[1] != grid.num_pixels:
            raise ValueError(f'local E-step: {k_num} centers / {feats.shape[1]} pixels for a '
                             f'grid of {grid.num_clusters} cells / {grid.hw} pixels')
        key_in = feats if feat_pos is None else feats + feat_pos
        kg = grid.gather(self.k_proj(key_in))  # B x K x P x D
        vg = grid.gather(self.v_proj(feats))  # B x K x P x D
        ok = grid.slot_ok[None].expand(b, -1, -1)  # B x K x P
        if key_padding_mask is not None:
            ok = ok & grid.gather(~key_padding_mask)
        okf = ok[:, :, None, None, :].float()
        c = centers
        iter_centers, logits_all, assigns, probs_all = [], [], [], []
        for _ in range(self.num_iters):
            q_in = c if center_pos is None else c + center_pos
            logits, assign, probs = self.local_e_step(self.q_proj(q_in), kg, grid, okf)
            c = self.local_m_step(assign, vg, grid).to(centers.dtype)  # B x K x D
            iter_centers.append(c)
            if return_logits or (return_maps and len(iter_centers) == self.num_iters):
                logits_all.append(logits.mean(2))  # B x K x 9 x P
                assigns.append(assign.mean(2))
                probs_all.append(assigns[-1] if probs is assign else probs.mean(2))
        return dict(centers=c, iter_centers=iter_centers, logits=logits_all, assigns=assigns,
                    probs=probs_all, grid=grid)

    def forward(self, centers, feats, key_padding_mask=None, center_pos=None, feat_pos=None,
                return_logits=True, grid=None, return_maps=True):
        """Runs T EM rounds.

        Args:
            centers: B x K x D initial centers C^(0).
            feats: B x N x D_kv pixel features I (flattened).
            key_padding_mask: B x N bool, True = padded pixel (excluded).
            center_pos, feat_pos: optional position embeddings added to the inputs of the Q and
                K projections (B x K x D, B x N x D_kv).
            return_logits: keep the maps of every iteration; if False only those of the last
                iteration are kept (memory: T vs 1 sets of B x K x N maps).
            grid: a :class:`~clustseg.models.layers.local_em.LocalGrid` over this level's
                H x W: the local E/M (maps then B x K x 9 x P, plus ``grid`` in the output).
            return_maps: with ``return_logits=False``, False keeps no map at all (the lists
                are empty; inference that reads only the centers skips the head averages).

        Returns:
            dict(centers=B x K x D final M-step output (heads merged),
                 iter_centers=[T x (B x K x D)], logits=[T (or 1) x (B x K x N)] head-averaged
                 E-step logits, assigns=[T (or 1) x (B x K x N)] head-averaged assignments
                 used by the M-step, probs=[T (or 1) x (B x K x N)] head-averaged softmax over
                 clusters, see :meth:`e_step`).
        """
        b, k_num, _ = centers.shape
        if k_num < 1:
            raise ValueError('need at least one cluster center (K >= 1)')
        if grid is not None:
            return self._forward_local(centers, feats, grid, key_padding_mask, center_pos,
                                       feat_pos, return_logits, return_maps)
        key_in = feats if feat_pos is None else feats + feat_pos
        c = centers
        iter_centers, logits_all, assigns, probs_all = [], [], [], []
        for t in range(self.num_iters):
            q_proj, k_proj, v_proj = self._projections(t)
            if t == 0 or not self.shared_iters:  # K, V projected once (Eq. 10) or per round
                k = self._split(k_proj(key_in))  # B x h x N x d
                v = self._split(v_proj(feats))  # B x h x N x d
            q_in = c if center_pos is None else c + center_pos
            q = self._split(q_proj(q_in))  # B x h x K x d
            logits, assign, probs = self.e_step(q, k, key_padding_mask)
            c = self.m_step_update(assign, v)  # B x h x K x d
            c = c.transpose(1, 2).reshape(b, k_num, self.embed_dims).to(centers.dtype)
            iter_centers.append(c)
            if return_logits or (return_maps and len(iter_centers) == self.num_iters):
                logits_all.append(logits.mean(1).contiguous())  # B x K x N
                assigns.append(assign.mean(1).contiguous())
                probs_all.append(assigns[-1] if probs is assign else probs.mean(1).contiguous())
        return dict(centers=c, iter_centers=iter_centers, logits=logits_all, assigns=assigns,
                    probs=probs_all)
