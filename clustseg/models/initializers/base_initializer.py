"""The dreamy-start interface: what an initializer reads, returns and may learn from."""
from typing import Dict, Optional, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor

#: the pixel decoder's outputs, coarse to fine (:class:`AxialPixelDecoder` returns them in this
#: order); initializers and the core name a level by these keys
PIXEL_LEVELS = ('stride32', 'stride16', 'stride8', 'stride4')


def check_level(key: str, level: Optional[str]) -> Optional[str]:
    """``level`` if it is one of :data:`PIXEL_LEVELS` (or None), else a ValueError naming
    ``key``."""
    if level is not None and level not in PIXEL_LEVELS:
        raise ValueError(f'{key}={level!r} is not a pixel-decoder level; allowed: '
                         f'{list(PIXEL_LEVELS)}')
    return level


def query_class_ids(query_classes, num_queries: int) -> Tensor:
    """An initializer's ``query_classes`` argument (None: no tie) -> K long class ids, -1 for
    an untied query; a list of another length is a ValueError."""
    qc = torch.full((num_queries, ), -1, dtype=torch.long) if query_classes is None else \
        torch.as_tensor(list(query_classes), dtype=torch.long)
    if qc.shape != (num_queries, ):
        raise ValueError(f'query_classes must list {num_queries} class ids, got {len(qc)}')
    return qc


class BaseInitializer(BaseModule):
    """Base class of the query initializers (the paper's dreamy start, Eq. 7-9, and the
    learned-queries baseline), called by :class:`~clustseg.models.core.ClusteringCore`.

    Reads: ``feats``, the pixel decoder's pyramid as a dict ``{level name: B x C x h x w}``
    (names in :data:`PIXEL_LEVELS`); an initializer reads the level ``in_level`` it was built
    with (:meth:`read`; a unit test may pass that one map as a tensor). ``pad_mask``:
    B x H x W bool of the input, True = padding, or the batch's
    :class:`~..layers.batch_padding.BatchPadding` (optional: what the core passes, so that
    the initializer reads the codes the decoder reads). ``num_queries``: K for this call
    (None: the configured K; initializers with a fixed K refuse another).

    Returns (:meth:`forward`): a dict with ``centers`` (B x K x D), ``center_pos`` (B x K x D,
    added to the queries of the decoder's attention; zeros when centers have no position) and
    ``query_classes`` (K long: the class a query is tied to, -1 for none); optionally
    ``points`` (K x 2, (x, y) seed positions in pixels of the ``in_level`` map).

    Learns from ground truth (:meth:`update`, optional): called by the core once per training
    iteration on every rank, with the same pyramid and ``gt_sem_seg``, B x H x W class ids of
    the model's class space (255 = none) at the input resolution. The default does nothing.

    Attributes:
        num_queries (int): the configured K.
        in_level (str | None): the pyramid level read (None: only the batch size is read).
    """

    in_level: Optional[str] = None

    def read(self, feats: Union[Dict[str, Tensor], Tensor]) -> Tensor:
        """The map this initializer reads: ``feats[in_level]``, or ``feats`` itself when a
        tensor is given; any level when ``in_level`` is None (only its batch size is used)."""
        if isinstance(feats, Tensor):
            return feats
        if self.in_level is None:
            return next(iter(feats.values()))
        if self.in_level not in feats:
            raise KeyError(f'{type(self).__name__} reads pyramid level {self.in_level!r}, not '
                           f'among {sorted(feats)}')
        return feats[self.in_level]

    def forward(self, feats, pad_mask: Optional[Tensor] = None,
                num_queries: Optional[int] = None) -> dict:
        raise NotImplementedError(f'{type(self).__name__} must implement forward()')

    def update(self, feats, gt_sem_seg: Tensor) -> None:
        """Ground-truth step (see the class docstring); the default does nothing."""
        return None


def check_initializer_output(initializer, init, batch: int, embed_dims: Optional[int]) -> None:
    """That an initializer's :meth:`~BaseInitializer.forward` result is what the decoder
    reads (see :class:`BaseInitializer`): a dict with ``centers`` and ``center_pos``
    B x K x D (D = the decoder's ``embed_dims``; None: any) and ``query_classes`` K.
    Otherwise a ValueError naming the initializer and what differs (shapes only: no device
    read)."""
    name = type(initializer).__name__
    if not isinstance(init, dict):
        raise ValueError(f'{name}.forward must return a dict, got {type(init).__name__}')
    missing = [k for k in ('centers', 'center_pos', 'query_classes') if k not in init]
    if missing:
        raise ValueError(f'{name}.forward returned no {missing} (keys: {sorted(init)}); an '
                         'initializer returns centers, center_pos and query_classes '
                         '(BaseInitializer)')
    centers = init['centers']
    if centers.dim() != 3 or centers.shape[0] != batch or \
            centers.shape[2] != (centers.shape[2] if embed_dims is None else embed_dims):
        raise ValueError(f'{name}: centers of shape {tuple(centers.shape)}, expected B x K x D '
                         f'= {batch} x K x {embed_dims or "D"} (D: the decoder\'s embed_dims)')
    if tuple(init['center_pos'].shape) != tuple(centers.shape):
        raise ValueError(f'{name}: center_pos of shape {tuple(init["center_pos"].shape)}, '
                         f'expected the centers\' {tuple(centers.shape)}')
    if tuple(init['query_classes'].shape) != (centers.shape[1], ):
        raise ValueError(f'{name}: query_classes of shape '
                         f'{tuple(init["query_classes"].shape)}, expected ({centers.shape[1]},) '
                         '(one class id or -1 per center)')
