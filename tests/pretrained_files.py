"""Randomly initialised checkpoints in the layouts of the upstream files that the paper configs
name, written for the offline switch (``CLUSTSEG_OFFLINE_WEIGHTS=<folder>``).

The Swin and ConvNeXt layouts are written out here from the architectures (key names and
shapes of the official Swin release and of mmpretrain's ConvNeXt classifier files), not taken
from the project's converters, so that the loaders are checked against an independent
statement of the layout."""
import torch
import torchvision

from clustseg.utils.pretrained import local_file_name

SWIN_B = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/' \
         'swin_base_patch4_window12_384_22k.pth'
CONVNEXT_B = 'https://download.openmmlab.com/mmclassification/v0/convnext/downstream/' \
             'convnext-base_3rdparty_in21k_20220301-262fd037.pth'
IN22K_CLASSES = 21841


def _rand(gen, *shape):
    return torch.randn(*shape, generator=gen) * 0.02


def _relative_position_index(w):
    coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij'))
    coords = coords.flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
    return rel[..., 0] * (2 * w - 1) + rel[..., 1]


def swin_b_official(seed=0):
    """State dict of the official Swin-B (patch 4, window 12, 384 input, 22k head)."""
    g = torch.Generator().manual_seed(seed)
    w, sd = 12, {}
    dims, depths, heads = [128, 256, 512, 1024], [2, 2, 18, 2], [4, 8, 16, 32]
    sd['patch_embed.proj.weight'] = _rand(g, 128, 3, 4, 4)
    sd['patch_embed.proj.bias'] = _rand(g, 128)
    sd['patch_embed.norm.weight'] = 1 + _rand(g, 128)
    sd['patch_embed.norm.bias'] = _rand(g, 128)
    res = 384 // 4
    for i, (d, depth, h) in enumerate(zip(dims, depths, heads)):
        for j in range(depth):
            p = f'layers.{i}.blocks.{j}.'
            sd[p + 'norm1.weight'], sd[p + 'norm1.bias'] = 1 + _rand(g, d), _rand(g, d)
            sd[p + 'attn.relative_position_bias_table'] = _rand(g, (2 * w - 1) ** 2, h)
            sd[p + 'attn.relative_position_index'] = _relative_position_index(w)
            sd[p + 'attn.qkv.weight'], sd[p + 'attn.qkv.bias'] = _rand(g, 3 * d, d), _rand(g, 3 * d)
            sd[p + 'attn.proj.weight'], sd[p + 'attn.proj.bias'] = _rand(g, d, d), _rand(g, d)
            sd[p + 'norm2.weight'], sd[p + 'norm2.bias'] = 1 + _rand(g, d), _rand(g, d)
            sd[p + 'mlp.fc1.weight'], sd[p + 'mlp.fc1.bias'] = _rand(g, 4 * d, d), _rand(g, 4 * d)
            sd[p + 'mlp.fc2.weight'], sd[p + 'mlp.fc2.bias'] = _rand(g, d, 4 * d), _rand(g, d)
            if j % 2 == 1 and res > w:  # shifted windows (none where one window covers all)
                sd[p + 'attn_mask'] = _rand(g, (res // w) ** 2, w * w, w * w)
        if i < 3:
            p = f'layers.{i}.downsample.'
            sd[p + 'reduction.weight'] = _rand(g, 2 * d, 4 * d)
            sd[p + 'norm.weight'], sd[p + 'norm.bias'] = 1 + _rand(g, 4 * d), _rand(g, 4 * d)
            res //= 2
    sd['norm.weight'], sd['norm.bias'] = 1 + _rand(g, 1024), _rand(g, 1024)
    sd['head.weight'], sd['head.bias'] = _rand(g, IN22K_CLASSES, 1024), _rand(g, IN22K_CLASSES)
    return sd


def convnext_b_mmpretrain(seed=0):
    """State dict of an mmpretrain ConvNeXt-B classifier (22k head), ``backbone.`` prefixed."""
    g = torch.Generator().manual_seed(seed)
    dims, depths, sd = [128, 256, 512, 1024], [3, 3, 27, 3], {}
    b = 'backbone.'
    sd[b + 'downsample_layers.0.0.weight'] = _rand(g, 128, 3, 4, 4)
    sd[b + 'downsample_layers.0.0.bias'] = _rand(g, 128)
    sd[b + 'downsample_layers.0.1.weight'] = 1 + _rand(g, 128)
    sd[b + 'downsample_layers.0.1.bias'] = _rand(g, 128)
    for i in range(1, 4):
        p = f'{b}downsample_layers.{i}.'
        sd[p + '0.weight'], sd[p + '0.bias'] = 1 + _rand(g, dims[i - 1]), _rand(g, dims[i - 1])
        sd[p + '1.weight'] = _rand(g, dims[i], dims[i - 1], 2, 2)
        sd[p + '1.bias'] = _rand(g, dims[i])
    for i, (d, depth) in enumerate(zip(dims, depths)):
        for j in range(depth):
            p = f'{b}stages.{i}.{j}.'
            sd[p + 'gamma'] = 1e-6 + _rand(g, d)
            sd[p + 'depthwise_conv.weight'] = _rand(g, d, 1, 7, 7)
            sd[p + 'depthwise_conv.bias'] = _rand(g, d)
            sd[p + 'norm.weight'], sd[p + 'norm.bias'] = 1 + _rand(g, d), _rand(g, d)
            sd[p + 'pointwise_conv1.weight'] = _rand(g, 4 * d, d)
            sd[p + 'pointwise_conv1.bias'] = _rand(g, 4 * d)
            sd[p + 'pointwise_conv2.weight'] = _rand(g, d, 4 * d)
            sd[p + 'pointwise_conv2.bias'] = _rand(g, d)
    sd[b + 'norm3.weight'], sd[b + 'norm3.bias'] = 1 + _rand(g, 1024), _rand(g, 1024)
    sd['head.fc.weight'] = _rand(g, IN22K_CLASSES, 1024)
    sd['head.fc.bias'] = _rand(g, IN22K_CLASSES)
    return sd


def write_upstream_checkpoints(folder):
    """Writes the four files under the names the offline switch reads; returns what each
    holds: {'r50': sd, 'r101': sd, 'swin-b': {'model': sd}, 'convnext-b': {'state_dict': sd}}."""
    torch.manual_seed(0)
    files = {
        'torchvision://resnet50': ('r50', torchvision.models.resnet50().state_dict()),
        'torchvision://resnet101': ('r101', torchvision.models.resnet101().state_dict()),
        SWIN_B: ('swin-b', dict(model=swin_b_official())),
        CONVNEXT_B: ('convnext-b', dict(state_dict=convnext_b_mmpretrain(), meta=dict())),
    }
    out = {}
    for name, (key, obj) in files.items():
        torch.save(obj, folder / local_file_name(name))
        out[key] = obj
    return out
