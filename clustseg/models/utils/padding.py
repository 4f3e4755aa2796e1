"""The one padding-mask convention of the models: True = padding (as PyTorch and mmdet)."""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor


def input_shape(metas: Sequence[dict]) -> Tuple[int, int]:
    """(H, W) of the batch's input tensor, from the metas: ``batch_input_shape`` (mmdet),
    ``pad_shape`` (mmseg), else the largest ``img_shape``."""
    m = metas[0]
    for key in ('batch_input_shape', 'pad_shape'):
        if key in m:
            return tuple(int(v) for v in m[key][:2])
    return (max(int(mm['img_shape'][0]) for mm in metas),
            max(int(mm['img_shape'][1]) for mm in metas))


def batch_pad_mask(metas: List[dict], device, hw: Optional[Tuple[int, int]] = None) -> Tensor:
    """B x H x W bool, True where the batch padded an image: outside each meta's ``img_shape``
    (images start at (0, 0)); a meta without ``img_shape`` counts as unpadded. ``hw``: the input
    size (default :func:`input_shape` of the metas)."""
    h, w = input_shape(metas) if hw is None else (int(hw[0]), int(hw[1]))
    mask = torch.ones(len(metas), h, w, dtype=torch.bool, device=device)
    for i, m in enumerate(metas):
        ih, iw = m.get('img_shape', (h, w))[:2]
        mask[i, :ih, :iw] = False
    return mask
