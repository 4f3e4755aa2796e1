"""Host-to-device copies that do not wait for the device."""
import torch
from torch import Tensor


def host_to_device(t: Tensor, device) -> Tensor:
    """A host tensor to ``device`` without a host sync on CUDA (pinned, non-blocking)."""
    if torch.device(device).type == 'cuda':
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
