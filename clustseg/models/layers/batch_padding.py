"""Where a batch is padded, known on the host, and what the modules derive from it per map size.

The pixel decoder, the initializer and the decoder each read, at the maps they work on, the
padding mask, the position unit and the sine codes of :mod:`.positional_encoding`. They read
the same maps (the decoder's levels are the pixel decoder's outputs; the initializer reads one
of them), so a :class:`BatchPadding` made once per forward (``ClusteringCore.forward``) computes
each of those once and hands the same tensors to every module.

The valid size of every image is kept on the host (from the metas, or read once from a mask):
whether a map has padded pixels at all is then known without reading the device, so a level
without padding (e.g. strides 16 and 32 of one 800 x 1333 image padded to 800 x 1344) gets no
mask and no masking operators, and no host sync decides it.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..utils.host import host_to_device
from ..utils.padding import input_shape
from .axial_block import axial_context
from .positional_encoding import (POS_SCALE, _check_mask, conv_stride,
                                  masked_sine_position_encoding, sine_position_encoding,
                                  valid_hw)


class BatchPadding:
    """A padded batch: image ``i`` is valid on its top-left ``valid_sizes[i]`` of the
    ``input_hw`` input (None: no image is padded). Per map size (any size the input is
    downsampled to), cached:

    * :meth:`sizes_at`: the valid size of every image there: a map pixel is valid when its
      input window holds a valid pixel, so ``ceil(v / s)`` at a conv stride ``s``
      (:func:`~.positional_encoding.conv_stride`; the size of a conv net's output for the
      image alone), else that of adaptive max-pool windows;
    * :meth:`mask_at` / :meth:`valid_at`: B x h x w bool, True = padding / True = real pixel,
      or None when no pixel of the map is padded;
    * :meth:`unit_at`: the position unit (valid long side / ``POS_SCALE``), a float when the
      images share it, else a B fp32 tensor;
    * :meth:`codes_at`: B x dims x h x w sine codes, zero on padding
      (:func:`~.positional_encoding.masked_sine_position_encoding`);
    * :meth:`axial_at`: :func:`~.axial_block.axial_context` of an axial attention over the map.

    A module given a mask tensor or None (a unit test, an API call) makes its own with
    :meth:`of`; within a model the core makes one and passes it down.
    """

    def __init__(self, valid_sizes: Optional[Sequence[Sequence[int]]], batch: int,
                 input_hw: Optional[Sequence[int]], device):
        self.batch = int(batch)
        self.device = torch.device(device)
        self.input_hw = None if input_hw is None else (int(input_hw[0]), int(input_hw[1]))
        if valid_sizes is not None:
            if self.input_hw is None:
                raise ValueError('BatchPadding: valid sizes need the input size (input_hw)')
            if len(valid_sizes) != self.batch:
                raise ValueError(f'BatchPadding: {len(valid_sizes)} valid sizes for a batch of '
                                 f'{self.batch}')
            ih, iw = self.input_hw
            valid_sizes = [(min(int(v[0]), ih), min(int(v[1]), iw)) for v in valid_sizes]
            if all(v == self.input_hw for v in valid_sizes):
                valid_sizes = None  # nothing padded
        self.valid_sizes: Optional[List[Tuple[int, int]]] = valid_sizes
        self._cache: Dict[tuple, object] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_metas(cls, metas: Sequence[dict], device,
                   hw: Optional[Sequence[int]] = None) -> 'BatchPadding':
        """From each meta's ``img_shape`` against the input size ``hw`` (default
        :func:`~clustseg.models.utils.input_shape` of the metas); a meta without ``img_shape``
        counts as unpadded."""
        h, w = input_shape(metas) if hw is None else (int(hw[0]), int(hw[1]))
        return cls([tuple(m.get('img_shape', (h, w))[:2]) for m in metas], len(metas), (h, w),
                   device)

    @classmethod
    def from_mask(cls, pad_mask: Tensor) -> 'BatchPadding':
        """From a B x H x W bool mask (True = padding) whose valid pixels are each image's
        top-left rectangle; reads the mask on the host (one sync on a GPU)."""
        _check_mask(pad_mask)
        b, h, w = pad_mask.shape
        padding = cls(valid_hw(pad_mask).long().tolist(), b, (h, w), pad_mask.device)
        rebuilt = padding.mask_at((h, w))
        if not torch.equal(pad_mask, rebuilt if rebuilt is not None else
                           torch.zeros_like(pad_mask)):
            raise ValueError('pad_mask: the valid pixels of each image must be a rectangle at '
                             'the top left (images start at (0, 0), padded bottom / right)')
        return padding

    @classmethod
    def of(cls, pad_mask: Union[None, Tensor, 'BatchPadding'], like: Tensor) -> 'BatchPadding':
        """``pad_mask`` as a :class:`BatchPadding`: itself; :meth:`from_mask` of a tensor; an
        unpadded batch of ``like``'s size and device for None (``like``: any B x ... map)."""
        if isinstance(pad_mask, BatchPadding):
            return pad_mask
        if pad_mask is None:
            return cls(None, like.shape[0], None, like.device)
        if not isinstance(pad_mask, Tensor):
            raise TypeError('pad_mask must be a B x H x W bool tensor, a BatchPadding or None, '
                            f'got {type(pad_mask).__name__}')
        return cls.from_mask(pad_mask)

    # ------------------------------------------------------------------ per map size
    def _cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def sizes_at(self, hw: Sequence[int]) -> Optional[List[Tuple[int, int]]]:
        """Each image's valid (rows, columns) on a map of size ``hw``; None: none is padded."""
        if self.valid_sizes is None:
            return None
        h, w = int(hw[0]), int(hw[1])
        return self._cached(('sizes', h, w), lambda: self._sizes(h, w))

    def _sizes(self, h, w):
        h0, w0 = self.input_hw
        s = conv_stride((h0, w0), (h, w))
        # a map pixel is valid when its input window holds a valid pixel: windows [s i,
        # s (i + 1)) at a conv stride, else adaptive max-pool windows [floor(i H0 / h), ...)
        if s is not None:
            sizes = [(-(-vh // s), -(-vw // s)) for vh, vw in self.valid_sizes]
        else:
            sizes = [(-(-vh * h // h0), -(-vw * w // w0)) for vh, vw in self.valid_sizes]
        return None if all(v == (h, w) for v in sizes) else sizes

    def mask_at(self, hw: Sequence[int]) -> Optional[Tensor]:
        """B x h x w bool, True = padding, or None when no pixel of the map is padded."""
        h, w = int(hw[0]), int(hw[1])
        sizes = self.sizes_at((h, w))
        if sizes is None:
            return None

        def make():
            mask = torch.ones(self.batch, h, w, dtype=torch.bool, device=self.device)
            for i, (vh, vw) in enumerate(sizes):
                mask[i, :vh, :vw].fill_(False)  # a fill on the device, no host scalar copied
            return mask
        return self._cached(('mask', h, w), make)

    def valid_at(self, hw: Sequence[int]) -> Optional[Tensor]:
        """B x h x w bool, True = real pixel, or None when no pixel of the map is padded."""
        mask = self.mask_at(hw)
        if mask is None:
            return None
        return self._cached(('valid', int(hw[0]), int(hw[1])), lambda: ~mask)

    def unit_at(self, hw: Sequence[int]) -> Union[float, Tensor]:
        """The position unit of each image on a map of size ``hw``
        (:func:`~.positional_encoding.position_unit`): a float when all images share it, else
        a B fp32 tensor (copied to the device without a host sync)."""
        h, w = int(hw[0]), int(hw[1])
        sizes = self.sizes_at((h, w)) or [(h, w)]
        units = [max(vh, vw, 1) / POS_SCALE for vh, vw in sizes]
        if all(u == units[0] for u in units):
            return units[0]

        return self._cached(('unit', h, w), lambda: host_to_device(
            torch.tensor(units, dtype=torch.float32), self.device))

    def codes_at(self, hw: Sequence[int], dims: int, dtype=None) -> Tensor:
        """B x dims x h x w sine codes of the map's pixels, zero on padding (an expanded view
        of one image's codes when no pixel is padded)."""
        h, w = int(hw[0]), int(hw[1])
        dtype = dtype or torch.float32
        key = ('codes', h, w, int(dims), dtype)
        if key in self._cache:
            return self._cache[key]
        mask = self.mask_at((h, w))
        if dtype != torch.float32:
            codes = self.codes_at((h, w), dims)
            codes = codes.to(dtype) if mask is not None else \
                codes[:1].to(dtype).expand(self.batch, -1, -1, -1)
        else:
            if mask is None:
                codes = sine_position_encoding(h, w, dims, device=self.device)[None].expand(
                    self.batch, -1, -1, -1)
            else:
                codes = masked_sine_position_encoding(mask, dims, unit=self.unit_at((h, w)))
        self._cache[key] = codes
        return codes

    def axial_at(self, hw: Sequence[int], dims: int) -> dict:
        """:func:`~.axial_block.axial_context` of ``dims``-channel axial attentions over a map
        of size ``hw`` (fp32 codes)."""
        h, w = int(hw[0]), int(hw[1])
        return self._cached(('axial', h, w, int(dims)), lambda: axial_context(
            self.batch, h, w, self.valid_at((h, w)), dims, self.device,
            unit=self.unit_at((h, w))))
