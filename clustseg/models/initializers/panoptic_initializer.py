"""Panoptic dreamy start: image-adaptive thing centers followed by memory-bank stuff centers."""
import torch

from clustseg.registry import MODELS
from .base_initializer import BaseInitializer, check_initializer_output


@MODELS.register_module()
class PanopticInitializer(BaseInitializer):
    """Concatenates ``thing_initializer`` (e.g. 75 image-adaptive) and ``stuff_initializer``
    (e.g. 53 memory-bank) centers: B x (K_th + K_st) x D, things first.

    ``query_classes`` of the result: -1 for thing queries (matched freely); for stuff queries
    their stuff class shifted by ``stuff_class_offset`` (the number of thing classes, so that
    ids follow the panoptic label order: things 0..79, stuff 80..132 on COCO).
    """

    def __init__(self, thing_initializer, stuff_initializer, stuff_class_offset=80,
                 init_cfg=None):
        super().__init__(init_cfg)
        self.things = MODELS.build_of(BaseInitializer, thing_initializer, 'thing_initializer',
                                      'query initializer')
        self.stuff = MODELS.build_of(BaseInitializer, stuff_initializer, 'stuff_initializer',
                                     'query initializer')
        for key, part in (('thing_initializer', self.things), ('stuff_initializer', self.stuff)):
            if getattr(part, 'num_queries', None) is None:
                raise ValueError(f'PanopticInitializer: {key} ({type(part).__name__}) has no '
                                 'fixed num_queries; the panoptic query count is the sum of '
                                 'its parts\'')
        self.stuff_class_offset = stuff_class_offset

    @property
    def num_queries(self):
        return self.things.num_queries + self.stuff.num_queries

    def forward(self, feats, pad_mask=None, num_queries=None):
        """-> dict(centers, center_pos, query_classes, num_things)."""
        if num_queries is not None:
            raise ValueError('PanopticInitializer: the query count is fixed by its thing and '
                             'stuff initializers')
        th = self.things(feats, pad_mask)
        st = self.stuff(feats, pad_mask)
        batch = self.things.read(feats).shape[0]
        check_initializer_output(self.things, th, batch, None)
        check_initializer_output(self.stuff, st, batch, None)
        if th['centers'].shape[2] != st['centers'].shape[2]:  # the decoder's D: ClusteringCore
            raise ValueError(
                f'PanopticInitializer: thing_initializer ({type(self.things).__name__}) gives '
                f'{th["centers"].shape[2]}-wide centers, stuff_initializer '
                f'({type(self.stuff).__name__}) {st["centers"].shape[2]}-wide; both must be '
                'the decoder\'s embed_dims')
        stuff_classes = st['query_classes']
        stuff_classes = torch.where(stuff_classes >= 0, stuff_classes + self.stuff_class_offset,
                                    stuff_classes)
        return dict(centers=torch.cat([th['centers'], st['centers']], dim=1),
                    center_pos=torch.cat([th['center_pos'], st['center_pos']], dim=1),
                    query_classes=torch.cat([th['query_classes'], stuff_classes]),
                    num_things=th['centers'].shape[1])

    def update(self, feats, gt_sem_seg):
        """Ground-truth step of both initializers; the stuff one (a memory bank) gets stuff ids
        ``class - stuff_class_offset`` (0..K_st-1; thing classes and 255 become 255)."""
        self.things.update(feats, gt_sem_seg)
        stuff = gt_sem_seg - self.stuff_class_offset
        ok = (stuff >= 0) & (stuff < self.stuff.num_queries)
        self.stuff.update(feats, torch.where(ok, stuff, torch.full_like(stuff, 255)))
