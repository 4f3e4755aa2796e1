"""Mixed precision with ``torch.autocast`` on any device (mmengine's AmpOptimWrapper needs CUDA)."""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

DTYPES = dict(bfloat16=torch.bfloat16, float16=torch.float16)


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under ``torch.autocast(device_type, dtype)``, on
    the device type of the model's first parameter.

    For bfloat16, which needs no loss scaling, on devices where mmengine's ``AmpOptimWrapper``
    refuses to run (CPU). The model keeps fp32 weights and fp32 islands where it needs them
    (softmax / einsum of the clustering E/M steps, losses).

    Args:
        dtype (str): ``'bfloat16'`` (default) or ``'float16'`` (CUDA only: use
            ``AmpOptimWrapper`` there, it scales the loss).
        Other arguments: those of ``OptimWrapper``.
    """

    def __init__(self, *args, dtype='bfloat16', **kwargs):
        super().__init__(*args, **kwargs)
        if dtype not in DTYPES:
            raise ValueError(f'optim_wrapper.dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
        self.cast_dtype = DTYPES[dtype]

    @contextmanager
    def optim_context(self, model):
        device_type = next(model.parameters()).device.type
        if self.cast_dtype == torch.float16 and device_type != 'cuda':
            raise ValueError('AutocastOptimWrapper: float16 needs loss scaling; on '
                             f'{device_type} use dtype="bfloat16"')
        with super().optim_context(model), torch.autocast(device_type=device_type,
                                                          dtype=self.cast_dtype):
            yield
