"""The clustering core every ClustSeg task runs: pixel decoder -> dreamy start -> decoder."""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from mmengine.model import BaseModule
from torch import Tensor

from clustseg.registry import MODELS
from ..initializers.base_initializer import (PIXEL_LEVELS, BaseInitializer,
                                             check_initializer_output)
from ..layers.batch_padding import BatchPadding

#: the pyramid levels given to the decoder (strides 32, 16, 8), in the order its
#: ``in_channels`` / ``layer_levels`` index them
DECODER_LEVELS = PIXEL_LEVELS[:3]


def select_states(states: List[dict], supervision, num_iters: int, training: bool,
                  test_iter: Optional[int] = None) -> List[dict]:
    """The E-step states a head predicts from. Training: the deep-supervision variant's
    (``supervision``, a :class:`~clustseg.models.supervision.DeepSupervision`,
    ``predicting``); test: the output's, or with ``test_iter = t`` the state after E/M round t
    (0-based) of the last layer (Table 7b)."""
    if not training and test_iter is not None:
        return [s for s in states if s['layer'] == states[-1]['layer'] and s['iter'] == test_iter]
    if not training:
        return states[-1:]
    return supervision.predicting(states, num_iters)


def needs_inner_rounds(supervision, training: bool, test_iter: Optional[int] = None) -> bool:
    """Whether :func:`select_states` can pick a state after an E/M round that is not its
    layer's last (training with a ``supervision`` whose ``inner_rounds`` is set, or a
    ``test_iter`` at test): the decoder computes those rounds' output centers only then
    (``ClusterDecoder.forward``'s ``inner_rounds``)."""
    return (training and supervision.inner_rounds) or (not training and test_iter is not None)


@dataclass
class CoreOutput:
    """What :meth:`ClusteringCore.forward` returns.

    Attributes:
        pyramid: the pixel decoder's maps by level name (:data:`PIXEL_LEVELS`), each
            B x C_l x h_l x w_l (zero on padding); ``pyramid['stride4']`` is the pixel
            embedding the mask heads project.
        padding: the batch's :class:`~..layers.batch_padding.BatchPadding` (masks, position
            units and codes per map size, computed once and shared by the pixel decoder, the
            initializer and the decoder).
        init: the initializer's output (``centers``, ``center_pos``, ``query_classes``, maybe
            ``points``); empty without an initializer.
        states: one dict per E/M round of every decoder layer, in order: ``layer``, ``iter``,
            ``level``, ``hw`` (h_l, w_l), ``centers`` (B x K x D after that round) and the
            maps asked for (``return_maps``): ``logits``, ``probs`` (softmax over the
            clusters, what losses supervise) and ``assigns`` (what the M-step used), each
            B x K x h_l w_l, or at a local level a
            :class:`~clustseg.models.layers.local_em.LocalAssignment`.
        centers: the decoder's final centers B x K x D (None without a decoder).
    """
    pyramid: Dict[str, Tensor]
    padding: BatchPadding
    init: dict = field(default_factory=dict)
    states: List[dict] = field(default_factory=list)
    centers: Optional[Tensor] = None

    @property
    def query_classes(self) -> Optional[Tensor]:
        """K long, the class each query is tied to (-1: none)."""
        return self.init.get('query_classes')


def build_module(cfg, key: str):
    """``MODELS.build(cfg)``; an unknown type or a constructor's ``TypeError`` /
    ``ValueError`` (a misspelled argument) is a ``ValueError`` naming the config ``key``."""
    try:
        return MODELS.build(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f'{key}: {e}') from e


@MODELS.register_module()
class ClusteringCore(BaseModule):
    """pixel decoder -> initializer (dreamy start) -> :class:`ClusterDecoder`, wired once for
    every task (panoptic / instance heads, the semantic head, the superpixel segmentor and the
    inference API).

    The initializer reads the pyramid level it names (:class:`BaseInitializer`); the decoder
    reads :data:`DECODER_LEVELS` (strides 32, 16, 8, in the order its ``in_channels`` /
    ``layer_levels`` index them). The ground-truth hook of the initializer (the memory bank) is called from
    :meth:`update` only.

    Args:
        pixel_decoder, initializer, decoder (dict): module configs. ``initializer`` and
            ``decoder`` may both be None (the superpixel no-decoder ablation: the core then
            runs the pixel decoder only).
        key (str): where the three sit in the model config (``'model.panoptic_head'``, the
            owner passes it): a config that cannot be built is a ``ValueError`` naming
            ``{key}.initializer`` (with the registered initializers), ``{key}.decoder`` or
            ``{key}.pixel_decoder``.
    """

    def __init__(self, pixel_decoder, initializer=None, decoder=None, key='core',
                 init_cfg=None):
        super().__init__(init_cfg)
        if (initializer is None) != (decoder is None):
            raise ValueError(f'{key}: the initializer and the decoder must be both set or both '
                             'None')
        self.pixel_decoder = build_module(pixel_decoder, f'{key}.pixel_decoder')
        self.initializer = None if initializer is None else MODELS.build_of(
            BaseInitializer, initializer, f'{key}.initializer', 'query initializer')
        self.decoder = None if decoder is None else build_module(decoder, f'{key}.decoder')

    @property
    def num_iters(self) -> int:
        return self.decoder.num_iters

    @property
    def out_channels(self) -> Dict[str, int]:
        """Channels of each pyramid level."""
        return dict(zip(PIXEL_LEVELS, self.pixel_decoder.out_channels))

    def forward(self, x: Sequence[Tensor], pad_mask: Union[None, Tensor, BatchPadding] = None,
                num_queries: Optional[int] = None, return_maps=False,
                seed_hw=None, inner_rounds: bool = True) -> CoreOutput:
        """Runs the core: :meth:`decode_pixels` then :meth:`cluster`.

        Args:
            x: backbone levels (strides 4..32), as the pixel decoder takes them.
            pad_mask: B x H x W bool, True = padding, or the batch's
                :class:`~..layers.batch_padding.BatchPadding` (``BatchPadding.from_metas``:
                no host read of a mask; what the heads pass); None: no padding.
            num_queries: K for this call (initializers with a variable K, superpixels).
            return_maps: keep every E-step's maps in ``states`` (for losses on them and the
                assignment-map API): True, all three, or a sequence of the names to keep
                (:func:`~clustseg.models.layers.recurrent_cross_attention.map_names`; a loss
                on ``probs`` alone asks for that one); False keeps the centers only.
            seed_hw: (h, w) of the seed grid, for decoders with local levels (default: the
                size of the initializer's level).
            inner_rounds: compute the output centers of the E/M rounds before each layer's
                last (False: their states' ``centers`` are None; :func:`needs_inner_rounds`).
        """
        return self.cluster(self.decode_pixels(x, pad_mask), num_queries, return_maps, seed_hw,
                            inner_rounds)

    def decode_pixels(self, x: Sequence[Tensor],
                      pad_mask: Union[None, Tensor, BatchPadding] = None) -> CoreOutput:
        """The pixel decoder alone -> a :class:`CoreOutput` with the pyramid only."""
        padding = BatchPadding.of(pad_mask, x[0])
        return CoreOutput(pyramid=dict(zip(PIXEL_LEVELS, self.pixel_decoder(x, padding))),
                          padding=padding)

    def cluster(self, out: CoreOutput, num_queries: Optional[int] = None,
                return_maps=False, seed_hw=None, inner_rounds: bool = True) -> CoreOutput:
        """Dreamy start and decoder on the pyramid of ``out`` (filled in and returned)."""
        if self.initializer is None:
            return out
        out.init = self.initializer(out.pyramid, out.padding, num_queries=num_queries)
        check_initializer_output(self.initializer, out.init,
                                 next(iter(out.pyramid.values())).shape[0],
                                 self.decoder.embed_dims)
        if seed_hw is None and self.decoder.local_levels:
            seed_hw = tuple(self.initializer.read(out.pyramid).shape[-2:])
        dec = self.decoder(out.init['centers'], [out.pyramid[lv] for lv in DECODER_LEVELS],
                           pad_mask=out.padding, center_pos=out.init['center_pos'],
                           return_logits=return_maps, seed_hw=seed_hw,
                           inner_rounds=inner_rounds)
        out.states, out.centers = dec['e_steps'], dec['centers']
        return out

    def update(self, out: CoreOutput, gt_sem_seg: Tensor) -> None:
        """The initializer's ground-truth step (:meth:`BaseInitializer.update`), on the pyramid
        of ``out``; ``gt_sem_seg``: B x H x W class ids of the model's class space (255 =
        none). Call once per training iteration on every rank."""
        if self.initializer is not None:
            self.initializer.update(out.pyramid, gt_sem_seg)
