import torch.nn as nn


def build_ffn(in_dims, out_dims, hidden_dims=None):
    """Two-layer FFN used by every dreamy-start initializer: Linear-GELU-Linear-LayerNorm."""
    hidden_dims = hidden_dims or max(in_dims, out_dims)
    return nn.Sequential(nn.Linear(in_dims, hidden_dims), nn.GELU(),
                         nn.Linear(hidden_dims, out_dims), nn.LayerNorm(out_dims))
