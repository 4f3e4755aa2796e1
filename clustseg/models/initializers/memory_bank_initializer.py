"""Semantic/stuff dreamy start (Eq. 7): class centers from per-class FIFO memory banks."""
import torch
import torch.nn as nn
from mmengine.dist import all_gather, get_world_size
from mmengine.model import BaseModule

from clustseg.registry import MODELS
from ..layers.recurrent_cross_attention import check_positive
from ._ffn import build_ffn


@MODELS.register_module()
class MemoryBankInitializer(BaseModule):
    """``c_k = FFN(mean(B_k))`` with ``B_k`` a first-in-first-out queue of class-k pixel embeddings.

    During training, :meth:`update` samples up to ``samples_per_class`` pixel embeddings of every
    class present in each image's ground truth (detached), gathers them from all DDP ranks (so
    every rank holds identical queues) and pushes them into the queues, oldest out first. The
    queues, write pointers and fill counts are buffers, hence saved in checkpoints. In eval mode
    nothing is updated: the centers are those of the trained bank (frozen for test). A class whose
    queue is still empty uses a learned fallback vector instead of its mean.

    Args:
        num_classes (int): K, one center per class (semantic vocabulary / stuff classes).
        feat_dims (int): channels of the pixel embeddings stored.
        embed_dims (int): D of the centers.
        queue_size (int): capacity of each queue.
        samples_per_class (int): embeddings pushed per class and image.
    """

    def __init__(self, num_classes, feat_dims, embed_dims, queue_size=256, samples_per_class=16,
                 ignore_index=255, init_cfg=None):
        super().__init__(init_cfg)
        check_positive('num_classes', num_classes)
        check_positive('queue_size', queue_size)
        check_positive('samples_per_class', samples_per_class)
        self.num_classes, self.queue_size = num_classes, queue_size
        self.samples_per_class, self.ignore_index = samples_per_class, ignore_index
        self.register_buffer('queue', torch.zeros(num_classes, queue_size, feat_dims))
        self.register_buffer('ptr', torch.zeros(num_classes, dtype=torch.long))
        self.register_buffer('count', torch.zeros(num_classes, dtype=torch.long))
        self.fallback = nn.Parameter(torch.zeros(num_classes, feat_dims))
        self.ffn = build_ffn(feat_dims, embed_dims)

    def class_means(self):
        """-> K x C mean of each queue (fallback vector where a queue is empty)."""
        filled = self.count.clamp(max=self.queue_size)  # K
        slot = torch.arange(self.queue_size, device=self.queue.device)
        valid = (slot[None] < filled[:, None]).to(self.queue.dtype)  # K x Q
        mean = (self.queue * valid[..., None]).sum(1) / filled.clamp(min=1)[:, None]
        return torch.where((filled > 0)[:, None], mean, self.fallback)

    def forward(self, feats, pad_mask=None):
        """feats: B x C x H x W (only B is used) -> dict(centers B x K x D)."""
        centers = self.ffn(self.class_means())
        return dict(centers=centers[None].expand(feats.shape[0], -1, -1))

    @torch.no_grad()
    def push(self, cls, embeddings):
        """FIFO-push ``embeddings`` (n x C) into queue ``cls``, overwriting the oldest entries."""
        n = embeddings.shape[0]
        if n == 0:
            return
        if n > self.queue_size:
            embeddings, n = embeddings[-self.queue_size:], self.queue_size
        pos = (self.ptr[cls] + torch.arange(n, device=self.ptr.device)) % self.queue_size
        self.queue[cls, pos] = embeddings.to(self.queue.dtype)
        self.ptr[cls] = (self.ptr[cls] + n) % self.queue_size
        self.count[cls] += n

    @torch.no_grad()
    def update(self, feats, gt_sem_seg):
        """Fills the queues from ground truth (training only).

        Args:
            feats: B x C x H x W pixel embeddings.
            gt_sem_seg: B x H0 x W0 class ids (``ignore_index`` skipped), resized by nearest.
        """
        if not self.training:
            return
        b, c, h, w = feats.shape
        gt = nn.functional.interpolate(gt_sem_seg[:, None].float(), size=(h, w),
                                       mode='nearest')[:, 0].long()
        flat = feats.detach().flatten(2).transpose(1, 2)  # B x HW x C
        picked = torch.full((b, self.num_classes, self.samples_per_class, c), float('nan'),
                            device=feats.device, dtype=self.queue.dtype)
        for i in range(b):
            labels = gt[i].flatten()
            for cls in labels.unique().tolist():
                if cls == self.ignore_index or not 0 <= cls < self.num_classes:
                    continue
                idx = (labels == cls).nonzero()[:, 0]
                idx = idx[torch.randperm(idx.numel(), device=idx.device)[:self.samples_per_class]]
                picked[i, cls, :idx.numel()] = flat[i, idx].to(self.queue.dtype)
        if get_world_size() > 1:
            picked = torch.cat(all_gather(picked), dim=0)
        for i in range(picked.shape[0]):  # rank-major, image order: identical on every rank
            for cls in range(self.num_classes):
                rows = picked[i, cls]
                rows = rows[~rows[:, 0].isnan()]
                self.push(cls, rows)
