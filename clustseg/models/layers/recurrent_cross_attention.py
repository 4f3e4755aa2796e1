"""Recurrent cross-attention: T rounds of EM clustering with shared projections (Eq. 10)."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..e_steps import build_variant
from .local_em import local_em

#: the head-averaged maps an E/M round can return (:meth:`RecurrentCrossAttention.forward`)
MAP_NAMES = ('logits', 'assigns', 'probs')


def map_names(return_maps) -> tuple:
    """A ``return_maps`` argument -> the names of the maps to keep: True = all of
    :data:`MAP_NAMES`, False / None = none, or a sequence of those names."""
    if return_maps is True:
        return MAP_NAMES
    if not return_maps:
        return ()
    names = (return_maps, ) if isinstance(return_maps, str) else tuple(return_maps)
    bad = [n for n in names if n not in MAP_NAMES]
    if bad:
        raise ValueError(f'return_maps: unknown maps {bad}; choose from {list(MAP_NAMES)}')
    return names


def check_positive(key, value):
    if not isinstance(value, int) or value < 1:
        raise ValueError(f'{key} must be an integer >= 1, got {value!r}')


class _HeadMean(torch.autograd.Function):
    """An E-step map B x h x N x K -> its mean over the heads, B x K x N (contiguous).

    The backward returns the gradient pixel-major and contiguous over N x K (broadcast over
    the heads), so that its sum with the M-step's gradient stays contiguous and the softmax's
    backward reads it without a copy; autograd's own transpose-and-mean backward gives a
    strided layout that costs a full-size copy per E-step on CPU."""

    @staticmethod
    def forward(ctx, x):
        ctx.heads = x.shape[1]
        return x.mean(1).transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad):
        g = (grad.transpose(1, 2) / ctx.heads).contiguous()  # B x N x K
        return g.unsqueeze(1).expand(-1, ctx.heads, -1, -1)


def _head_mean(x):
    """An E-step map B x h x N x K -> its mean over the heads, B x K x N (contiguous)."""
    return _HeadMean.apply(x)


@MODELS.register_module()
class RecurrentCrossAttention(BaseModule):
    """Cluster centers attend to pixels; the E/M steps are repeated ``num_iters`` times.

    K and V are projected once from the pixel features; Q is re-projected from the centers at
    every iteration with the same weights, so the parameter count does not depend on T.

    * E-step (Eq. 10): ``logits = scale * Q(C) K^T`` per head; ``probs = softmax_K(logits)``
      (what losses supervise, for every variant); the M-step's assignment is
      ``variant.assign(logits, probs, ...)``, an :class:`~clustseg.models.e_steps.EStepVariant`
      built from ``variant`` (a registered name such as ``'recurrent'`` (Eq. 10),
      ``'vanilla'`` (softmax over pixels, Eq. 5), ``'kmeans'`` (hard argmax), ``'gumbel'``
      (straight-through Gumbel, Table 4c), or ``dict(type=...)``).
    * M-step: ``C = normalise(M) V``: each center becomes the assignment-weighted *mean* of the
      values, ``C_k = sum_i M_ki V_i / (sum_i M_ki + eps)``, i.e. the EM update of Eq. 4 for
      soft memberships, whose scale does not grow with H x W (one-hot variants divide by the
      pixel count floored at 1, :meth:`~clustseg.models.e_steps.EStepVariant.m_step_mass`),
      not the literal ``M V`` of Eq. 10. A variant whose assignment already sums to 1 over the
      pixels (``mass_normalised=False``, vanilla) is not divided.
    * ``center_norm_bias=True`` adds ``-||q_k||^2 / 2`` to the logits, turning the dot product
      into a negative squared distance (the softmax over K ignores the per-pixel ``||k_i||^2``):
      a Gaussian-mixture E-step.
    * Local form (``forward(..., grid=LocalGrid)``, superpixels): center k is tied to cell k of
      a :class:`~clustseg.models.layers.local_em.LocalGrid` and every pixel is assigned among
      the 9 centers of its own and the neighbouring cells only (softmax / argmax over those 9),
      O(9 N) instead of O(K N) per head; the M-step sums over the pixels that have the center
      among their candidates (:func:`~clustseg.models.layers.local_em.local_em`). Variants
      that declare ``supports_local`` only.
    * ``shared_iters=False`` (Table 5, "multiple non-recurrent cross-attention"): every round t
      has its own Q, K and V projections (K and V re-projected from the pixels each round), so
      the T rounds are T stacked one-step cross-attentions with unshared weights and the
      parameter count grows with T. Dense E-steps only.

    Args:
        embed_dims (int): D, channels of centers and pixel features.
        num_heads (int): heads; D must be divisible by it.
        num_iters (int): T >= 1.
        variant (str | dict): the E-step variant (registered name or config).
        identity_kv (bool): use the pixel features themselves as K and V (no projection).
        center_norm_bias (bool): see above.
        scale (float, optional): logit scale, default 1/sqrt(D/num_heads).
        shared_iters (bool): one set of projections for all T rounds (default, Eq. 10) or one
            per round (Table 5).
    """

    def __init__(self, embed_dims, num_heads=8, num_iters=3, variant='recurrent',
                 identity_kv=False, center_norm_bias=False, scale=None, shared_iters=True,
                 init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_iters', num_iters)
        check_positive('num_heads', num_heads)
        check_positive('embed_dims', embed_dims)
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims={embed_dims} must be divisible by num_heads={num_heads}')
        self.variant = build_variant(variant)
        self.embed_dims, self.num_heads, self.num_iters = embed_dims, num_heads, num_iters
        self.eps = 1e-6  # the mean M-step's mass floor for soft assignments (m_step_mass)
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
            self.k_projs = nn.ModuleList(nn.Linear(embed_dims, embed_dims)
                                         for _ in range(num_iters))
            self.v_projs = nn.ModuleList(nn.Linear(embed_dims, embed_dims)
                                         for _ in range(num_iters))
        else:
            self.q_proj = nn.Linear(embed_dims, embed_dims)
            if identity_kv:
                self.k_proj = self.v_proj = nn.Identity()
            else:
                self.k_proj = nn.Linear(embed_dims, embed_dims)
                self.v_proj = nn.Linear(embed_dims, embed_dims)

    @property
    def supports_local(self) -> bool:
        """Whether ``forward(..., grid=...)`` is available (shared projections and a variant
        with a local form)."""
        return self.shared_iters and self.variant.supports_local

    def _split(self, x):  # B x L x D -> B x h x L x d
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dims).transpose(1, 2)

    def e_step(self, q, k, key_padding_mask=None):
        """q: B x h x K x d, k: B x h x N x d -> (logits, assignment, probs), each B x h x N x K
        (pixel-major: the softmax over the clusters runs over the contiguous last axis, about
        2x faster on CPU than over dim -2, and the M-step's gradient comes back in the same
        layout, :meth:`m_step_update`).

        ``assignment`` drives the M-step (``variant.assign``); ``probs`` is always the softmax
        over the cluster axis of the logits (zero on padded pixels): the per-pixel distribution
        over clusters that losses supervise. For 'recurrent' the two are the same tensor; for a
        variant with ``needs_prob_loss`` the loss on ``probs`` is what trains Q / K.
        """
        with torch.autocast(device_type=q.device.type, enabled=False):
            q, k = q.float(), k.float()
            # B x h x N x K as one bmm over (B h) x N x d and (B h) x d x K (the operands
            # matmul / einsum would form, with fewer operators dispatched)
            b, h, n, d = k.shape
            qt = (q * self.scale).transpose(-1, -2).reshape(b * h, d, -1)
            logits = torch.bmm(k.reshape(b * h, n, d), qt).view(b, h, n, -1)
            if self.center_norm_bias:
                logits = logits - 0.5 * self.scale * q.pow(2).sum(-1).unsqueeze(2)
            pad = None if key_padding_mask is None else key_padding_mask[:, None, :, None]
            probs = logits.softmax(dim=-1)  # over clusters
            if pad is not None:
                probs = probs.masked_fill(pad, 0.0)
            assign = self.variant.assign(logits, probs, pad, cluster_dim=-1, pixel_dim=-2)
        return logits, assign, probs

    def _projections(self, t):
        """(q, k, v) projections of round ``t``."""
        if self.shared_iters:
            return self.q_proj, self.k_proj, self.v_proj
        return self.q_projs[t], self.k_projs[t], self.v_projs[t]

    def m_step_update(self, assign, v):
        """assign: B x h x N x K (:meth:`e_step`'s layout), v: B x h x N x d -> centers
        B x h x K x d (fp32), computed as ``(v^T assign)^T`` so that the gradient with respect
        to the assignment comes back pixel-major (the softmax's backward then reads it
        contiguously)."""
        b, h, n, d = v.shape
        with torch.autocast(device_type=v.device.type, enabled=False):
            # (B h) x d x K: one bmm of the operands matmul would form
            out = torch.bmm(v.float().reshape(b * h, n, d).transpose(1, 2),
                            assign.reshape(b * h, n, -1))
            if self.variant.mass_normalised:
                mass = assign.sum(-2).view(b * h, 1, -1)  # (B h) x 1 x K
                out = out / self.variant.m_step_mass(mass, self.eps)
        return out.view(b, h, d, -1).transpose(-1, -2)

    def _forward_local(self, centers, feats, grid, key_padding_mask, center_pos, feat_pos,
                       return_logits, return_maps, last_m_step, last_probs):
        """:meth:`forward` with ``grid``: :func:`local_em`, maps head-averaged B x K x 9 x P."""
        if not self.supports_local:
            raise ValueError(f'the local E-step needs a variant with a local form and '
                             f'shared_iters=True, not variant={type(self.variant).__name__} / '
                             f'shared_iters={self.shared_iters}')
        key_in = feats if feat_pos is None else feats + feat_pos
        keys = self.k_proj(key_in)
        values = keys if (self.identity_kv and feat_pos is None) else self.v_proj(feats)

        def q_fn(c):
            return self.q_proj(c if center_pos is None else c + center_pos)

        out = local_em(centers, keys, values, grid, q_fn, self.num_iters, self.variant,
                       num_heads=self.num_heads, key_padding_mask=key_padding_mask,
                       scale=self.scale, center_norm_bias=self.center_norm_bias,
                       eps=self.eps,
                       return_all=return_logits, last_m_step=last_m_step,
                       last_probs=last_probs)
        keep = map_names(return_maps)
        if not keep:
            out['logits'] = out['assigns'] = out['probs'] = []

        def heads(x, name):  # B x K x h x 9 x P -> B x K x 9 x P
            if x is None or name not in keep:
                return None
            return x.squeeze(2) if x.shape[2] == 1 else x.mean(2)

        assigns = [heads(a, 'assigns') for a in out['assigns']]
        probs = [None if 'probs' not in keep else
                 assigns[i] if p is a and assigns[i] is not None else heads(p, 'probs')
                 for i, (a, p) in enumerate(zip(out['assigns'], out['probs']))]
        return dict(centers=out['centers'], iter_centers=out['iter_centers'],
                    logits=[heads(x, 'logits') for x in out['logits']], assigns=assigns,
                    probs=probs, grid=grid)

    def forward(self, centers, feats, key_padding_mask=None, center_pos=None, feat_pos=None,
                return_logits=True, grid=None, return_maps=True, last_m_step=True,
                last_probs=True):
        """Runs T EM rounds.

        Args:
            centers: B x K x D initial centers C^(0).
            feats: B x N x D_kv pixel features I (flattened).
            key_padding_mask: B x N bool, True = padded pixel (excluded).
            center_pos, feat_pos: optional position embeddings added to the inputs of the Q and
                K projections (B x K x D, B x N x D_kv).
            return_logits: keep the maps (those ``return_maps`` names) of every iteration; if
                False only those of the last iteration (memory: T vs 1 sets of B x K x N
                maps).
            grid: a :class:`~clustseg.models.layers.local_em.LocalGrid` over this level's
                H x W: the local E/M (maps then B x K x 9 x P, plus ``grid`` in the output).
            return_maps: which head-averaged maps to keep (:func:`map_names`): True, all
                three; a sequence of names, those only (the others are None: a loss that
                reads ``probs`` alone spares the other head averages and their memory);
                False, none (the lists are empty; inference that reads only the centers).
            last_m_step, last_probs: local form only (:func:`local_em`): skip the last M-step
                (``centers`` is then None) / the last softmax (inference that needs only the
                last logits, the superpixel segmentor's hard labels).

        Returns:
            dict(centers=B x K x D final M-step output (heads merged),
                 iter_centers=[T x (B x K x D)], logits=[T (or 1) x (B x K x N)] head-averaged
                 E-step logits, assigns=[T (or 1) x (B x K x N)] head-averaged assignments
                 used by the M-step, probs=[T (or 1) x (B x K x N)] head-averaged softmax over
                 clusters, see :meth:`e_step`; a map ``return_maps`` does not name is None in
                 its list, and every list is empty with ``return_maps=False``).
        """
        b, k_num, _ = centers.shape
        if k_num < 1:
            raise ValueError('need at least one cluster center (K >= 1)')
        if grid is not None:
            return self._forward_local(centers, feats, grid, key_padding_mask, center_pos,
                                       feat_pos, return_logits, return_maps, last_m_step,
                                       last_probs)
        key_in = feats if feat_pos is None else feats + feat_pos
        c = centers
        iter_centers, logits_all, assigns, probs_all = [], [], [], []
        keep = map_names(return_maps)
        for t in range(self.num_iters):
            q_proj, k_proj, v_proj = self._projections(t)
            if t == 0 or not self.shared_iters:  # K, V projected once (Eq. 10) or per round
                # head-major and fp32 (the E/M steps' dtype, also under autocast) once, so
                # that no E/M round copies or converts them again for its products
                k = self._split(k_proj(key_in).float()).contiguous()  # B x h x N x d
                v = self._split(v_proj(feats).float()).contiguous()  # B x h x N x d
            q_in = c if center_pos is None else c + center_pos
            q = self._split(q_proj(q_in))  # B x h x K x d
            logits, assign, probs = self.e_step(q, k, key_padding_mask)
            c = self.m_step_update(assign, v)  # B x h x K x d
            # contiguous B x K x D: one copy here instead of one in each linear reading it
            c = c.transpose(1, 2).reshape(b, k_num, self.embed_dims).to(centers.dtype) \
                .contiguous()
            iter_centers.append(c)
            if keep and (return_logits or len(iter_centers) == self.num_iters):
                # B x K x N each, only the maps asked for
                logits_all.append(_head_mean(logits) if 'logits' in keep else None)
                assigns.append(_head_mean(assign) if 'assigns' in keep else None)
                probs_all.append(None if 'probs' not in keep else
                                 assigns[-1] if probs is assign and assigns[-1] is not None
                                 else _head_mean(probs))
        return dict(centers=c, iter_centers=iter_centers, logits=logits_all, assigns=assigns,
                    probs=probs_all)
