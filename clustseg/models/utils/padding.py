"""The input size of a batch from its metas (the padding itself: ``BatchPadding``, whose masks
follow the one convention of the models: True = padding, as PyTorch and mmdet)."""
from typing import Sequence, Tuple


def input_shape(metas: Sequence[dict]) -> Tuple[int, int]:
    """(H, W) of the batch's input tensor, from the metas: ``batch_input_shape`` (mmdet),
    ``pad_shape`` (mmseg), else the largest ``img_shape``."""
    m = metas[0]
    for key in ('batch_input_shape', 'pad_shape'):
        if key in m:
            return tuple(int(v) for v in m[key][:2])
    return (max(int(mm['img_shape'][0]) for mm in metas),
            max(int(mm['img_shape'][1]) for mm in metas))
