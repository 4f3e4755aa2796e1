"""Semantic/stuff dreamy start (Eq. 7): class centers from per-class FIFO memory banks."""
import torch
import torch.nn as nn
from mmengine.dist import all_gather, get_world_size

from clustseg.registry import MODELS
from ..layers.positional_encoding import labels_at
from ..layers.recurrent_cross_attention import check_positive
from ..utils import StepRandom
from ._ffn import build_ffn
from .base_initializer import BaseInitializer, check_level


@MODELS.register_module()
class MemoryBankInitializer(BaseInitializer):
    """``c_k = FFN(mean(B_k))`` with ``B_k`` a first-in-first-out queue of class-k pixel embeddings.

    :meth:`update` is an explicit training step, to be called on every rank at every training
    iteration (also when a rank's images hold no class): it samples up to ``samples_per_class``
    pixel embeddings of every class present in each image's ground truth (detached, chosen by a
    checkpointed :class:`StepRandom`), gathers them from all DDP ranks (ranks may hold different
    batch sizes) and pushes them into the queues, oldest out first, in rank-major image order,
    so that every rank holds identical queues. Queues, write pointers, fill counts and the
    sampler state are buffers, saved in checkpoints. In eval mode nothing is updated (frozen
    for test). A class whose queue is still empty uses a learned fallback vector instead of
    its mean.

    Class centers carry no position (``center_pos`` zeros, as Eq. 7 defines them), unless
    ``learned_pos=True``: then every class has a learned D-dim query position, as Mask2Former's
    queries and :class:`~clustseg.models.initializers.LearnedInitializer`'s have, which the
    decoder adds to the centers before each Q projection, so that class means that start as
    near-copies of each other still give distinct queries (not in the paper; the opt-in
    ``*_bank-pos_*`` configs, measured in docs/model_zoo.md).

    Args:
        num_classes (int): K, one center per class (semantic vocabulary / stuff classes).
        feat_dims (int): channels of the pixel embeddings stored.
        embed_dims (int): D of the centers.
        queue_size (int): capacity of each queue.
        samples_per_class (int): embeddings pushed per class and image.
        ignore_index (int): label ignored by :meth:`update` (as are labels outside
            ``[0, num_classes)``).
        in_level (str): the pyramid level whose pixel embeddings the bank stores.
        learned_pos (bool): a learned K x D query position table instead of zeros.
    """

    def __init__(self, num_classes, feat_dims, embed_dims, queue_size=256, samples_per_class=16,
                 ignore_index=255, in_level='stride16', learned_pos=False, init_cfg=None):
        super().__init__(init_cfg)
        self.in_level = check_level('initializer.in_level', in_level)
        check_positive('num_classes', num_classes)
        check_positive('queue_size', queue_size)
        check_positive('samples_per_class', samples_per_class)
        self.num_classes, self.queue_size = num_classes, queue_size
        self.samples_per_class, self.ignore_index = samples_per_class, ignore_index
        self.embed_dims = embed_dims
        self.register_buffer('queue', torch.zeros(num_classes, queue_size, feat_dims))
        self.register_buffer('ptr', torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer('count', torch.zeros(num_classes, dtype=torch.long))
        self.fallback = nn.Parameter(torch.zeros(num_classes, feat_dims))
        self.ffn = build_ffn(feat_dims, embed_dims)
        self.sampler = StepRandom(stream='memory_bank', per_rank=True)
        self.pos_embed = nn.Embedding(num_classes, embed_dims) if learned_pos else None

    @property
    def num_queries(self):
        return self.num_classes

    def class_means(self):
        """-> K x C mean of each queue (fallback vector where a queue is empty)."""
        filled = self.count.clamp(max=self.queue_size)  # K
        slot = torch.arange(self.queue_size, device=self.queue.device)
        valid = (slot[None] < filled[:, None]).to(self.queue.dtype)  # K x Q
        mean = (self.queue * valid[..., None]).sum(1) / filled.clamp(min=1)[:, None]
        # torch.where keeps the fallback in the graph (zero gradient once filled): no DDP
        # parameter is ever unused
        return torch.where((filled > 0)[:, None], mean, self.fallback)

    def forward(self, feats, pad_mask=None, num_queries=None):
        """feats: the pyramid (only B is read) -> dict(centers B x K x D, center_pos B x K x D
        (zeros, or the learned table with ``learned_pos``), query_classes K (query k is
        class k))."""
        if num_queries not in (None, self.num_classes):
            raise ValueError(f'MemoryBankInitializer has one center per class '
                             f'({self.num_classes}); num_queries={num_queries} was asked')
        b = self.read(feats).shape[0]
        centers = self.ffn(self.class_means())[None].expand(b, -1, -1)
        pos = torch.zeros_like(centers) if self.pos_embed is None else \
            self.pos_embed.weight[None].expand(b, -1, -1).to(centers.dtype)
        return dict(centers=centers, center_pos=pos,
                    query_classes=torch.arange(self.num_classes, device=centers.device))

    @torch.no_grad()
    def push(self, classes, embeddings):
        """FIFO-push rows ``embeddings`` (n x C) into the queues ``classes`` (n), in row order
        within each class; the oldest entries are overwritten. Vectorised over classes."""
        if classes.numel() == 0:
            return
        order = torch.sort(classes, stable=True).indices
        classes, embeddings = classes[order], embeddings[order]
        n = torch.bincount(classes, minlength=self.num_classes)  # rows per class
        first = torch.cumsum(n, 0) - n
        j = torch.arange(classes.numel(), device=classes.device) - first[classes]  # rank in class
        keep = j >= n[classes] - self.queue_size  # more rows than capacity: the newest win
        classes, embeddings, j = classes[keep], embeddings[keep], j[keep]
        pos = (self.ptr[classes] + j) % self.queue_size
        self.queue[classes, pos] = embeddings.to(self.queue.dtype)
        self.ptr.copy_((self.ptr + n) % self.queue_size)
        self.count += n

    @torch.no_grad()
    def sample(self, feats, gt_sem_seg):
        """Up to ``samples_per_class`` embeddings of each class of each image.

        Returns:
            (B x K x S x C embeddings, B x K x S bool: slot filled).
        """
        b, c, h, w = feats.shape
        picked = feats.new_zeros(b, self.num_classes, self.samples_per_class, c,
                                 dtype=self.queue.dtype)
        filled = torch.zeros(b, self.num_classes, self.samples_per_class, dtype=torch.bool,
                             device=feats.device)
        if b == 0:
            return picked, filled
        gt = labels_at(gt_sem_seg, (h, w)).long().flatten(1)  # B x HW, label at cell centres
        ok = (gt >= 0) & (gt < self.num_classes) & (gt != self.ignore_index)
        cls = torch.where(ok, gt, self.num_classes)  # invalid pixels sort last
        rand = torch.rand(gt.shape, generator=self.sampler.generator()).to(feats.device)
        order = torch.argsort(cls.double() + rand.double(), dim=1)  # by class, random within
        cls_sorted = cls.gather(1, order)
        n = torch.zeros(b, self.num_classes + 1, dtype=torch.long, device=feats.device)
        n.scatter_add_(1, cls_sorted, torch.ones_like(cls_sorted))
        first = torch.cumsum(n, 1) - n
        rank = torch.arange(h * w, device=feats.device)[None] - first.gather(1, cls_sorted)
        take = (rank < self.samples_per_class) & (cls_sorted < self.num_classes)
        bi, pi = take.nonzero(as_tuple=True)
        k, s = cls_sorted[bi, pi], rank[bi, pi]
        rows = feats.detach().flatten(2).transpose(1, 2)[bi, order[bi, pi]]  # n x C
        picked[bi, k, s] = rows.to(self.queue.dtype)
        filled[bi, k, s] = True
        return picked, filled

    @torch.no_grad()
    def update(self, feats, gt_sem_seg):
        """One training step of the bank (no-op in eval mode). Call it on every rank.

        Args:
            feats: the pyramid (reads ``in_level``: B x C x H x W pixel embeddings; B may
                differ between ranks, and be 0).
            gt_sem_seg: B x H0 x W0 class ids, read at the centres of the H x W cells
                (:func:`~clustseg.models.layers.positional_encoding.labels_at`).
        """
        if not self.training:
            return
        picked, filled = self.sample(self.read(feats), gt_sem_seg)
        if get_world_size() > 1:  # pad to the largest batch; `filled` marks real rows
            b_max = max(int(t) for t in all_gather(torch.tensor([picked.shape[0]],
                                                                device=picked.device)))
            pad = b_max - picked.shape[0]
            if pad:
                picked = torch.cat([picked, picked.new_zeros(pad, *picked.shape[1:])])
                filled = torch.cat([filled, filled.new_zeros(pad, *filled.shape[1:])])
            picked = torch.cat(all_gather(picked), 0)  # rank-major
            filled = torch.cat(all_gather(filled.to(torch.uint8)), 0).bool()
        # rows in (image, class, slot) order; push keeps that order within each class
        img, cls, slot = filled.nonzero(as_tuple=True)
        self.push(cls, picked[img, cls, slot])
