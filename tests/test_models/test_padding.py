"""Padding invariance of the pixel decoder and the cluster decoder, and the one position-encoding
convention they share (``clustseg.models.layers.positional_encoding``).

An image padded in a batch beside a larger one must give, on its valid region, the outputs it
gives alone (eval mode, max abs difference < 1e-4). The backbone is left out: the padded
batch's backbone features are built by zero-padding (or garbage-padding) the features of the
image alone, i.e. the features are equal on the valid region by construction. Whole-network
invariance through mmdet's ResNet is out of scope: its 3x3 convs and max-pool at the valid
region's border see padded pixels, so its features there differ from those of the image alone.
"""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from clustseg.models.decoders import ClusterDecoder
from clustseg.models.layers.axial_block import AxialAttention1d, axial_context
from clustseg.models.layers.batch_padding import BatchPadding
from clustseg.models.layers.positional_encoding import (conv_stride, masked_sine_position_encoding,
                                                        position_unit, sine_encode_1d,
                                                        sine_encode_points,
                                                        sine_position_encoding, valid_hw)
from clustseg.models.pixel_decoders import AxialPixelDecoder

SMALL, LARGE = (97, 131), (160, 192)
# a size where a stride-s/2 map has exactly twice the rows/cols of the stride-s map (96/32 = 3,
# 96/16 = 6): the 2x upsampling of its last valid row reads the first padded coarse row
EVEN = (96, 120)
STRIDES = (4, 8, 16, 32)
CHANS = (8, 16, 32, 64)
TOL = 1e-4


def _ceil(a, b):
    return -(-a // b)


def downsample_pad_mask(pad_mask, size):
    """The reference of ``BatchPadding.mask_at``, on the device: a map pixel is valid when its
    input window holds a valid pixel (windows ``[s i, s (i + 1))`` at the conv stride s, else
    adaptive max-pool windows); returns the mask itself at the input size."""
    h0, w0 = pad_mask.shape[-2:]
    h, w = int(size[0]), int(size[1])
    if (h, w) == (h0, w0):
        return pad_mask
    valid = (~pad_mask)[:, None].float()
    s = conv_stride((h0, w0), (h, w))
    if s is not None:
        valid = F.max_pool2d(F.pad(valid, (0, w * s - w0, 0, h * s - h0)), s, s)
    else:
        valid = F.adaptive_max_pool2d(valid, (h, w))
    return valid[:, 0] < 0.5


def _randomise(module, seed):
    """Random affine norms (incl. the zero-initialised residual scales) and running stats, so
    that padded pixels get non-zero values after every 1x1 conv + norm and attention matters."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
            m.bias.data = torch.randn(m.bias.shape, generator=g) * 0.5
            m.running_mean = torch.randn(m.running_mean.shape, generator=g) * 0.2
            m.running_var = torch.rand(m.running_var.shape, generator=g) + 0.5
    return module.eval()


def _models():
    torch.manual_seed(0)
    pix = _randomise(AxialPixelDecoder(in_channels=list(CHANS), channels=[32, 16, 16, 8],
                                       num_heads=4), 1)
    dec = ClusterDecoder(in_channels=[32, 16, 16], embed_dims=32, num_heads=4, num_iters=2,
                         ffn_dims=64, layer_levels=(0, 1, 2)).eval()
    return pix, dec


def _feats(hw, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(1, c, _ceil(hw[0], s), _ceil(hw[1], s), generator=g)
            for c, s in zip(CHANS, STRIDES)]


def _batch(small, large, fill='zeros', small_hw=SMALL):
    """The small image's features padded (bottom/right) to the large one's sizes, stacked
    before the large image's; pad_mask 2 x H x W at input resolution."""
    out = []
    g = torch.Generator().manual_seed(7)
    for fs, fl in zip(small, large):
        pad = torch.zeros_like(fl) if fill == 'zeros' else torch.randn(fl.shape, generator=g) * 3
        pad[..., :fs.shape[-2], :fs.shape[-1]] = fs
        out.append(torch.cat([pad, fl]))
    mask = torch.zeros(2, *LARGE, dtype=torch.bool)
    mask[0] = True
    mask[0, :small_hw[0], :small_hw[1]] = False
    return out, mask


def _run(pix, dec, feats, pad_mask, centers, center_pos):
    with torch.no_grad():
        maps = pix(feats, pad_mask)
        out = dec(centers, maps[:3], pad_mask=pad_mask, center_pos=center_pos,
                  return_logits=True)
    return maps, out


def _max_diffs(alone, batched, b=0):
    """Max abs difference of image ``b`` of the batch vs alone: pixel-decoder maps (cropped to
    the alone size), final centers, every E-step's logits and probs on valid pixels."""
    maps_a, out_a = alone
    maps_b, out_b = batched
    d = {}
    for i, (ma, mb) in enumerate(zip(maps_a, maps_b)):
        h, w = ma.shape[-2:]
        d[f'map{i}'] = (ma[0] - mb[b, :, :h, :w]).abs().max().item()
    d['centers'] = (out_a['centers'][0] - out_b['centers'][b]).abs().max().item()
    for j, (ea, eb) in enumerate(zip(out_a['e_steps'], out_b['e_steps'])):
        h, w = ea['hw']
        hb, wb = eb['hw']
        for key in ('logits', 'probs'):
            xa = ea[key][0].view(-1, h, w)
            xb = eb[key][b].view(-1, hb, wb)[:, :h, :w]
            d[f'e{j}.{key}'] = (xa - xb).abs().max().item()
    return d


@pytest.mark.parametrize('fill,small_hw', [('zeros', SMALL), ('garbage', SMALL),
                                           ('zeros', EVEN)])
def test_image_alone_equals_image_padded_in_a_batch(fill, small_hw):
    """97 x 131 (and 96 x 120) alone vs padded to 160 x 192 beside a 160 x 192 image. With
    zero padding and with garbage in the padded features (the decoders never read them)."""
    pix, dec = _models()
    small, large = _feats(small_hw, 1), _feats(LARGE, 2)
    centers, center_pos = torch.randn(2, 6, 32), torch.randn(2, 6, 32)
    alone = _run(pix, dec, small, None, centers[:1], center_pos[:1])
    feats, mask = _batch(small, large, fill, small_hw)
    batched = _run(pix, dec, feats, mask, centers, center_pos)
    diffs = _max_diffs(alone, batched)
    assert max(diffs.values()) < TOL, diffs
    # the pixel decoder's outputs are zero on padding
    for m, f in zip(batched[0], feats[::-1]):
        pm = downsample_pad_mask(mask, f.shape[-2:])
        assert m[0][:, pm[0]].abs().max() == 0
    # the large image is unaffected by its neighbour
    big = _run(pix, dec, large, None, centers[1:], center_pos[1:])
    assert max(_max_diffs(big, batched, b=1).values()) < TOL
    # an all-valid mask is the same as no mask
    full = _run(pix, dec, small, torch.zeros(1, *small_hw, dtype=torch.bool), centers[:1],
                center_pos[:1])
    assert max(_max_diffs(alone, full).values()) < TOL


def test_padding_is_detected_without_the_mask():
    """The same comparison fails when the batch is decoded without its padding mask (keys on
    padding, positions normalised by the padded size, convs seeing non-zero padding)."""
    pix, dec = _models()
    small, large = _feats(SMALL, 1), _feats(LARGE, 2)
    centers = torch.randn(2, 6, 32)
    alone = _run(pix, dec, small, None, centers[:1], None)
    feats, mask = _batch(small, large)
    diffs = _max_diffs(alone, _run(pix, dec, feats, None, centers, None))
    assert min(diffs['map2'], diffs['map3']) > 0.1 and diffs['centers'] > 1e-2, diffs
    assert min(diffs['map0'], diffs['map1']) > 1e-3, diffs  # axial stages too
    # with the pixel decoder masked but the decoder not, the decoder alone is caught
    with torch.no_grad():
        maps = pix(feats, mask)
        out = dec(centers, maps[:3], return_logits=True)
    diffs = _max_diffs(alone, (maps, out))
    assert diffs['map3'] < TOL and diffs['centers'] > 1e-2, diffs


def test_axial_attention_excludes_padded_keys():
    """Changing the padded pixels does not change a valid pixel's output; a fully padded
    column (no valid key) gives finite values."""
    torch.manual_seed(0)
    attn = AxialAttention1d(8, 2, 'h').eval()
    x = torch.randn(1, 8, 9, 7)
    valid = torch.zeros(1, 9, 7, dtype=torch.bool)
    valid[:, :5, :4] = True
    y = attn(x, valid)
    x2 = x.clone()
    x2[:, :, ~valid[0]] = torch.randn(8, int((~valid).sum()))
    y2 = attn(x2, valid)
    assert torch.isfinite(y2).all()
    assert (y - y2)[:, :, valid[0]].abs().max() < 1e-6
    assert (attn(x2) - y)[:, :, valid[0]].abs().max() > 1e-3  # unmasked: it does change
    # the shared context's masks are additive: 0 on the valid keys of a sequence, -inf on
    # its padded ones, all 0 for a sequence without a valid key
    ctx = axial_context(1, 9, 7, valid, 8, x.device)
    for axis, keys in (('h', valid[0].t()), ('w', valid[0])):  # (others) x L
        mask = ctx[axis][1][:, 0, 0]
        assert mask.dtype == torch.float32
        expect = torch.where(keys | ~keys.any(1, keepdim=True), 0.0, float('-inf'))
        assert torch.equal(mask, expect)


@pytest.mark.parametrize('n', [97, 131, 160, 161, 33, 7])
def test_downsampled_mask_follows_conv_output_sizes(n):
    """A map at stride s of an H0-pixel input has ceil(H0 / s) pixels; an image with v valid
    pixels keeps ceil(v / s) of them (what a stride-s conv net gives for it alone)."""
    h0, w0 = n + 29, n + 3
    mask = torch.ones(1, h0, w0, dtype=torch.bool)
    mask[0, :n, :n - 2] = False
    for s in (1, 2, 4, 8, 16, 32):
        size = (_ceil(h0, s), _ceil(w0, s))
        assert conv_stride((h0, w0), size) in (s, None) or size == (1, 1)
        m = downsample_pad_mask(mask, size)
        assert m.shape == (1, *size)
        assert valid_hw(m).tolist() == [[_ceil(n, s), _ceil(n - 2, s)]]
        # valid region is the top-left rectangle
        assert not m[0, :_ceil(n, s), :_ceil(n - 2, s)].any()


def test_one_convention_for_maps_and_points():
    """The code of a pixel equals the code of a point at its centre; the 2-D code is the 1-D
    code of x then y; a padded image gets its alone codes on the valid region (zero on
    padding); the unit is the valid long side / 8, the same in x and y."""
    h, w, d = 13, 21, 16
    enc = sine_position_encoding(h, w, d)  # d x h x w
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    pts = torch.stack([xs, ys], -1).float() + 0.5
    unit = max(h, w) / 8.0
    assert torch.allclose(enc.permute(1, 2, 0), sine_encode_points(pts, d, unit), atol=1e-6)
    assert torch.allclose(enc[:d // 2].permute(1, 2, 0),
                          sine_encode_1d(pts[..., 0] / unit, d // 2), atol=1e-6)
    mask = torch.ones(2, 30, 40, dtype=torch.bool)
    mask[0, :h, :w] = False
    mask[1] = False
    padded = masked_sine_position_encoding(mask, d)
    assert torch.allclose(padded[0, :, :h, :w], enc, atol=1e-6)
    assert padded[0][:, mask[0]].abs().max() == 0
    assert torch.allclose(padded[1], sine_position_encoding(30, 40, d), atol=1e-6)
    assert position_unit(mask).tolist() == pytest.approx([unit, 40 / 8.0])
    # per-image units for points: B x K x 2 with a B x 1 unit
    u = position_unit(mask)[:, None]
    both = sine_encode_points(pts[:2, :3].reshape(1, 6, 2).expand(2, -1, -1), d, u)
    assert torch.allclose(both[0], enc[:, :2, :3].permute(1, 2, 0).reshape(6, d), atol=1e-6)
    # an explicit unit (the superpixel grid interval) is used as given
    s = math.sqrt(h * w / 20)
    assert torch.allclose(sine_position_encoding(h, w, d, unit=s).permute(1, 2, 0),
                          sine_encode_points(pts, d, s), atol=1e-6)
    with pytest.raises(ValueError, match='multiple of 4'):
        sine_encode_points(pts, 6)


def _rect_mask(sizes, hw):
    mask = torch.ones(len(sizes), *hw, dtype=torch.bool)
    for i, (h, w) in enumerate(sizes):
        mask[i, :h, :w] = False
    return mask


@pytest.mark.parametrize('input_hw,sizes', [((160, 192), [(97, 131), (160, 192)]),
                                            ((800, 1344), [(800, 1333)]),
                                            ((96, 120), [(96, 120), (96, 120)]),
                                            ((61, 70), [(33, 70), (61, 7)])])
def test_batch_padding_equals_the_mask_it_stands_for(input_hw, sizes):
    """Per map size (conv strides and sizes no power-of-two stride fits), ``BatchPadding``
    gives the masks, units, sine codes and axial contexts computed from the downsampled mask
    (exactly), and None for a map without a padded pixel; from the metas as from the mask."""
    mask = _rect_mask(sizes, input_hw)
    padding = BatchPadding.from_mask(mask)
    metas = [dict(img_shape=s, batch_input_shape=input_hw) for s in sizes]
    assert BatchPadding.from_metas(metas, 'cpu').valid_sizes == padding.valid_sizes
    maps = [(_ceil(input_hw[0], s), _ceil(input_hw[1], s)) for s in (1, 4, 8, 16, 32)]
    maps += [(7, 9), (input_hw[0] // 3, input_hw[1] // 5)]  # adaptive windows
    for hw in maps:
        ref = downsample_pad_mask(mask, hw)
        got = padding.mask_at(hw)
        if not ref.any():
            assert got is None and padding.valid_at(hw) is None, hw
        else:
            assert torch.equal(got, ref) and torch.equal(padding.valid_at(hw), ~ref), hw
        unit = padding.unit_at(hw)
        assert torch.equal(torch.as_tensor(unit).expand(len(sizes)), position_unit(ref)), hw
        for dims, dtype in ((16, torch.float32), (8, torch.bfloat16)):
            codes = padding.codes_at(hw, dims, dtype)
            assert codes.shape == (len(sizes), dims, *hw) and codes.dtype == dtype
            assert torch.equal(codes, masked_sine_position_encoding(ref, dims, dtype=dtype)), hw
            assert padding.codes_at(hw, dims, dtype) is codes  # computed once
        ctx = padding.axial_at(hw, 6)
        ref_ctx = axial_context(len(sizes), *hw, ~ref, 6, 'cpu')
        for axis in 'hw':
            assert torch.equal(ctx[axis][0].expand_as(ref_ctx[axis][0]), ref_ctx[axis][0])
            if got is None:  # no padded key: no mask at all
                assert ctx[axis][1] is None and not ref_ctx[axis][1].any()
            else:
                assert torch.equal(ctx[axis][1], ref_ctx[axis][1])


def test_batch_padding_refuses_a_mask_that_is_not_a_top_left_rectangle():
    mask = _rect_mask([(5, 6)], (8, 8))
    mask[0, 0, 0] = True
    with pytest.raises(ValueError, match='pad_mask.*top left'):
        BatchPadding.from_mask(mask)
    with pytest.raises(TypeError, match='pad_mask'):
        BatchPadding.of([[True]], torch.zeros(1, 3, 8, 8))


def test_one_padding_for_the_core_no_host_read(repo_root):
    """Within a model forward the pixel decoder, the initializer and the decoder read one
    ``BatchPadding`` made from the metas: each code is computed once per map size and
    channel count (the initializer's 256-d codes at stride 16 are the decoder's keys'), and
    the head's inference forward reads nothing from the device and makes no tensor from host
    data (what a CUDA-graph capture of it needs, ``benchmark.py --cuda-graph``)."""
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from torch.utils._python_dispatch import TorchDispatchMode

    import clustseg.models.layers.batch_padding as bp
    from clustseg.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(f'{repo_root}/configs/_base_/models/clustseg_r50_panoptic.py')
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'):
        head = MODELS.build(cfg.model).panoptic_head.eval()
    core = head.core
    feats = [torch.randn(1, c, _ceil(100, s), _ceil(160, s))
             for c, s in zip((256, 512, 1024, 2048), STRIDES)]
    padding = BatchPadding.from_metas([dict(img_shape=(100, 133), batch_input_shape=(100, 160))],
                                      'cpu')
    calls = []
    encode = bp.masked_sine_position_encoding

    def spy(mask, dims, **kw):
        calls.append((tuple(mask.shape[-2:]), dims))
        return encode(mask, dims, **kw)

    class HostReads(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n += func._schema.name in ('aten::_local_scalar_dense', 'aten::is_nonzero',
                                            'aten::nonzero', 'aten::lift_fresh')
            return func(*args, **(kwargs or {}))

    bp.masked_sine_position_encoding = spy
    try:
        reads = HostReads()
        with torch.no_grad(), reads:
            out = core(feats, padding)
        core_calls = list(calls)
        sample = DetDataSample(metainfo=dict(img_shape=(100, 133), batch_input_shape=(100, 160)))
        with torch.no_grad(), reads:
            head_out = head(feats, [sample])
    finally:
        bp.masked_sine_position_encoding = encode
    assert out.padding is padding
    assert head_out.core.padding.valid_sizes == padding.valid_sizes
    # 133 valid columns of 160: padded at strides 8 (17 of 20) and 16 (9 of 10), not at 32
    # (5 of 5), where the codes are the unpadded ones
    assert sorted(core_calls) == [((7, 10), 64), ((7, 10), 256), ((13, 20), 256)], calls
    assert padding.mask_at((4, 5)) is None
    assert reads.n == 0
