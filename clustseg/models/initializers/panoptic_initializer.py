"""Panoptic dreamy start: image-adaptive thing centers followed by memory-bank stuff centers."""
import torch
from mmengine.model import BaseModule

from clustseg.registry import MODELS


@MODELS.register_module()
class PanopticInitializer(BaseModule):
    """Concatenates ``thing_initializer`` (e.g. 75 image-adaptive) and ``stuff_initializer``
    (e.g. 53 memory-bank) centers: B x (K_th + K_st) x D, things first."""

    def __init__(self, thing_initializer, stuff_initializer, init_cfg=None):
        super().__init__(init_cfg)
        self.things = MODELS.build(thing_initializer)
        self.stuff = MODELS.build(stuff_initializer)

    def forward(self, feats, pad_mask=None):
        th = self.things(feats, pad_mask)['centers']
        st = self.stuff(feats, pad_mask)['centers']
        return dict(centers=torch.cat([th, st], dim=1), num_things=th.shape[1])

    def update(self, feats, gt_stuff_seg):
        """Forwards memory-bank filling to the stuff initializer (class ids of stuff only)."""
        if hasattr(self.stuff, 'update'):
            self.stuff.update(feats, gt_stuff_seg)
