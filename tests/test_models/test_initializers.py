import pytest
import torch

from clustseg.models.initializers import (GridInitializer, ImageAdaptiveInitializer,
                                          LearnedInitializer, MemoryBankInitializer,
                                          PanopticInitializer, PooledImageAdaptiveInitializer,
                                          grid_points)


@pytest.mark.parametrize('k', [50, 200, 1000])
def test_grid_initializer_exact_k_on_bsds_size(k):
    init = GridInitializer(in_channels=8, embed_dims=16, pos_dims=8)
    feats = torch.randn(2, 8, 321, 481)
    out = init(feats, num_queries=k)
    assert out['centers'].shape == (2, k, 16)
    pts = out['points']
    assert pts.shape == (k, 2)
    assert (pts[:, 0] > 0).all() and (pts[:, 0] < 481).all()
    assert (pts[:, 1] > 0).all() and (pts[:, 1] < 321).all()
    assert torch.unique(pts, dim=0).shape[0] == k  # no two seeds at the same place
    assert out['center_pos'].shape == (2, k, 16)  # D-dimensional, for the decoder's queries
    assert (out['query_classes'] == -1).all()


def test_grid_points_are_near_regular_on_portrait_images():
    pts = grid_points(600, 481, 321)
    rows = torch.unique(pts[:, 1])
    counts = torch.stack([(pts[:, 1] == r).sum() for r in rows])
    assert counts.max() - counts.min() <= 1
    # rows/cols ratio follows the aspect ratio: spacing in x ~ spacing in y
    dy = 481 / len(rows)
    dx = 321 / counts.float().mean()
    assert 0.8 < dx / dy < 1.25


def test_grid_initializer_rejects_k_above_pixels_and_below_one():
    init = GridInitializer(4, 8, pos_dims=4)
    with pytest.raises(ValueError, match='num_superpixels'):
        init(torch.randn(1, 4, 5, 5), num_queries=26)
    with pytest.raises(ValueError, match='num_superpixels'):
        init(torch.randn(1, 4, 5, 5), num_queries=0)
    with pytest.raises(ValueError, match='num_queries'):
        init(torch.randn(1, 4, 5, 5))


def test_image_adaptive_initializer_is_image_dependent():
    init = ImageAdaptiveInitializer(8, 16, num_queries=10, pos_dims=8)
    out = init(torch.randn(1, 8, 12, 12))
    a = out['centers']
    b = init(torch.randn(1, 8, 12, 12))['centers']
    assert a.shape == (1, 10, 16) and out['center_pos'].shape == (1, 10, 16)
    assert not torch.allclose(a, b)
    assert init(torch.randn(1, 8, 12, 12), num_queries=7)['centers'].shape == (1, 7, 16)
    with pytest.raises(ValueError, match='num_queries'):
        ImageAdaptiveInitializer(8, 16, num_queries=200)(torch.randn(1, 8, 10, 10))
    with pytest.raises(ValueError, match='num_queries'):
        ImageAdaptiveInitializer(8, 16, num_queries=0)


def test_image_adaptive_topk_picks_valid_pixels_only():
    """ImageAdaptiveInitializer (top-K pixels, the instance configs'): padded pixels never become
    centers, however strong their features; the valid image alone gives the same centers."""
    torch.manual_seed(0)
    init = ImageAdaptiveInitializer(in_channels=8, embed_dims=16, num_queries=6, pos_dims=8)
    feats = torch.randn(2, 8, 6, 7)
    pad = torch.zeros(2, 6, 7, dtype=torch.bool)
    pad[1, :, 4:] = True  # image 1: columns 4.. are padding
    feats[1, :, :, 4:] = 100.0 * torch.randn(8, 6, 3)
    out = init(feats, pad)
    assert (out['indices'][1] % 7 < 4).all()
    changed = feats.clone()
    changed[1, :, :, 4:] = -feats[1, :, :, 4:]
    torch.testing.assert_close(init(changed, pad)['centers'][1], out['centers'][1])


def test_learned_initializer_is_image_independent():
    init = LearnedInitializer(5, 8)
    out = init(torch.randn(2, 3, 4, 4))
    a = out['centers']
    assert a.shape == (2, 5, 8) and out['center_pos'].shape == (2, 5, 8)
    torch.testing.assert_close(a[0], a[1])
    assert out['query_classes'].tolist() == [-1] * 5
    tied = LearnedInitializer(3, 8, query_classes=[80, 81, 82])
    assert tied(torch.randn(1, 3, 4, 4))['query_classes'].tolist() == [80, 81, 82]
    with pytest.raises(ValueError, match='num_queries'):
        init(torch.randn(1, 3, 4, 4), num_queries=6)


def test_memory_bank_fifo_order_and_capacity():
    bank = MemoryBankInitializer(num_classes=2, feat_dims=1, embed_dims=4, queue_size=3)
    zero = lambda n: torch.zeros(n, dtype=torch.long)  # noqa: E731
    for v in [1.0, 2.0]:
        bank.push(zero(1), torch.tensor([[v]]))
    assert bank.count[0] == 2
    torch.testing.assert_close(bank.class_means()[0], torch.tensor([1.5]))
    bank.push(zero(2), torch.tensor([[3.0], [4.0]]))  # 1.0 is the oldest: overwritten
    assert sorted(bank.queue[0, :, 0].tolist()) == [2.0, 3.0, 4.0]
    torch.testing.assert_close(bank.class_means()[0], torch.tensor([3.0]))
    bank.push(zero(4), torch.tensor([[5.0], [6.0], [7.0], [8.0]]))  # more than the capacity
    assert sorted(bank.queue[0, :, 0].tolist()) == [6.0, 7.0, 8.0]
    # class 1 never filled -> fallback vector
    torch.testing.assert_close(bank.class_means()[1], bank.fallback[1].detach())


def test_memory_bank_push_is_vectorised_over_classes_and_keeps_row_order():
    bank = MemoryBankInitializer(num_classes=3, feat_dims=1, embed_dims=4, queue_size=2)
    cls = torch.tensor([2, 0, 2, 2, 0])
    bank.push(cls, torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]))
    assert bank.count.tolist() == [2, 0, 3]
    assert bank.queue[0, :, 0].tolist() == [2.0, 5.0]
    # class 2 got 3 rows for 2 slots: the newest two (3, 4) stay, at their FIFO positions
    assert sorted(bank.queue[2, :, 0].tolist()) == [3.0, 4.0]
    assert bank.ptr.tolist() == [0, 0, 1]


def test_memory_bank_holds_exactly_the_classes_of_a_real_label_map(repo_root):
    from clustseg.datasets.bsds_io import load_bsds_segmentations
    seg = load_bsds_segmentations(str(next((repo_root / 'tests' / 'data' / 'bsds500' /
                                            'groundTruth' / 'val').glob('*.mat'))))[0]
    gt = torch.as_tensor(seg.astype('int64'))[None] - 1  # BSDS regions 1..R -> 0..R-1
    present = sorted(torch.unique(gt).tolist())
    bank = MemoryBankInitializer(num_classes=int(gt.max()) + 3, feat_dims=2, embed_dims=4,
                                 queue_size=8, samples_per_class=3).train()
    feats = torch.randn(1, 2, *gt.shape[-2:])
    bank.update(feats, gt)
    assert torch.nonzero(bank.count).flatten().tolist() == present
    assert bank.count[present].max() <= 3
def test_memory_bank_update_from_gt_and_frozen_in_eval():
    torch.manual_seed(0)
    bank = MemoryBankInitializer(num_classes=3, feat_dims=2, embed_dims=4, queue_size=8,
                                 samples_per_class=4)
    feats = torch.zeros(1, 2, 4, 4)
    feats[:, 0, :, :2] = 5.0  # class 0 pixels carry (5, 0)
    feats[:, 1, :, 2:] = 7.0  # class 2 pixels carry (0, 7)
    gt = torch.zeros(1, 4, 4, dtype=torch.long)
    gt[:, :, 2:] = 2
    gt[0, 0, 0] = 255  # ignored
    bank.train()
    bank.update(feats, gt)
    assert bank.count.tolist() == [4, 0, 4]
    torch.testing.assert_close(bank.class_means()[0], torch.tensor([5.0, 0.0]))
    torch.testing.assert_close(bank.class_means()[2], torch.tensor([0.0, 7.0]))
    state = {k: v.clone() for k, v in bank.state_dict().items()}
    assert {'queue', 'ptr', 'count'} <= set(state)  # saved in checkpoints
    bank.eval()
    bank.update(feats * 3, gt)
    for k, v in bank.state_dict().items():
        torch.testing.assert_close(v, state[k])
    out = bank(feats)
    assert out['centers'].shape == (1, 3, 4)
    assert out['query_classes'].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match='one center per class'):
        bank(feats, num_queries=5)


def test_memory_bank_positions_zero_or_one_learned_row_per_class():
    """Eq. 7's class centers have no position; ``learned_pos`` gives class k row k of a learned
    table, the same for every image, and the table trains through what reads ``center_pos``."""
    feats = torch.randn(2, 2, 4, 4)
    plain = MemoryBankInitializer(num_classes=3, feat_dims=2, embed_dims=4)
    assert not any('pos' in n for n, _ in plain.named_parameters())
    assert torch.count_nonzero(plain(feats)['center_pos']) == 0
    bank = MemoryBankInitializer(num_classes=3, feat_dims=2, embed_dims=4, learned_pos=True)
    pos = bank(feats)['center_pos']
    assert pos.shape == (2, 3, 4)
    torch.testing.assert_close(pos[0], bank.pos_embed.weight)
    torch.testing.assert_close(pos[1], pos[0])
    assert torch.linalg.matrix_rank(pos[0]) == 3  # a distinct position for every class
    pos[:, 1].sum().backward()
    grad = bank.pos_embed.weight.grad
    assert grad[1].abs().sum() > 0 and grad[[0, 2]].abs().sum() == 0


def test_panoptic_initializer_things_then_stuff():
    init = PanopticInitializer(
        thing_initializer=dict(type='ImageAdaptiveInitializer', in_channels=8, embed_dims=16,
                               num_queries=75, pos_dims=8),
        stuff_initializer=dict(type='MemoryBankInitializer', num_classes=53, feat_dims=8,
                               embed_dims=16))
    out = init(torch.randn(2, 8, 10, 10))
    assert out['centers'].shape == (2, 128, 16) and out['center_pos'].shape == (2, 128, 16)
    assert out['num_things'] == 75
    assert out['query_classes'].tolist() == [-1] * 75 + list(range(80, 133))


def test_panoptic_initializer_parts_of_other_widths_name_both_parts():
    """A part narrower than the other is named with both widths (the stuff part used to be
    checked against the thing part's width, as if that were the decoder's)."""
    init = PanopticInitializer(
        thing_initializer=dict(type='ImageAdaptiveInitializer', in_channels=8, embed_dims=12,
                               num_queries=5, pos_dims=8),
        stuff_initializer=dict(type='MemoryBankInitializer', num_classes=4, feat_dims=8,
                               embed_dims=16))
    with pytest.raises(ValueError, match=r'thing_initializer \(ImageAdaptiveInitializer\) '
                       r'gives 12-wide centers, stuff_initializer \(MemoryBankInitializer\) '
                       r'16-wide'):
        init(torch.randn(2, 8, 10, 10))


def test_image_adaptive_attention_tokens_pool_the_valid_pixels_only():
    """PooledImageAdaptiveInitializer: K pooled tokens from the image, padded pixels carry no
    weight, the pooling maps get a gradient; K changes and bad class ties are errors."""
    torch.manual_seed(0)
    init = PooledImageAdaptiveInitializer(in_channels=8, embed_dims=16, num_queries=5,
                                          pos_dims=8)
    feats = torch.randn(2, 8, 6, 7)
    pad = torch.zeros(2, 6, 7, dtype=torch.bool)
    pad[1, :, 4:] = True  # image 1: columns 4.. are padding
    out = init(feats, pad)
    assert out['centers'].shape == (2, 5, 16) and out['center_pos'].shape == (2, 5, 16)
    assert (out['query_classes'] == -1).all()
    assert (out['indices'][1] % 7 < 4).all()  # the strongest pixel of each query is valid
    changed = feats.clone()
    changed[1, :, :, 4:] = 100.0  # padded content must not matter
    torch.testing.assert_close(init(changed, pad)['centers'][1], out['centers'][1])
    assert not torch.allclose(init(feats[[1, 0]], pad)['centers'][0], out['centers'][0])
    out['centers'].sum().backward()
    assert init.score.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='5 learned pooling maps; num_queries=4'):
        init(feats, pad, num_queries=4)
    with pytest.raises(ValueError, match='query_classes must list 5 class ids, got 2'):
        PooledImageAdaptiveInitializer(8, 16, 5, 8, query_classes=[1, 2])
    tied = PooledImageAdaptiveInitializer(8, 16, 5, 8, query_classes=range(80, 85))
    assert tied(feats, pad)['query_classes'].tolist() == list(range(80, 85))
    # a top-K pixel has no fixed query identity: no class tie there
    with pytest.raises(TypeError, match='query_classes'):
        ImageAdaptiveInitializer(8, 16, 5, 8, query_classes=range(5))


def test_initializer_output_is_checked_naming_the_initializer():
    """A new initializer whose output the decoder cannot read (a missing key, another D,
    another K in query_classes) is a ValueError naming it at the first forward, not a
    KeyError or a shape error inside the decoder; a panoptic part without a fixed K is one at
    build."""
    from clustseg.apis import init_model
    root = __import__('pathlib').Path(__file__).resolve().parents[2]
    model = init_model(str(root / 'configs/panoptic/clustseg_compact_embedded.py'))
    core = model.panoptic_head.core
    x = [torch.randn(2, c, 64 // s, 64 // s) for c, s in ((16, 4), (32, 8), (64, 16), (128, 32))]
    good = core.initializer.forward
    core.cluster(core.decode_pixels(x))  # as built: fine

    def broken(**change):
        def forward(*args, **kwargs):
            out = dict(good(*args, **kwargs))
            for k, v in change.items():
                if v is None:
                    del out[k]
                else:
                    out[k] = v(out[k])
            return out
        return forward

    for change, match in (
            (dict(center_pos=None), r"PanopticInitializer\.forward returned no \['center_pos'\]"),
            (dict(centers=lambda c: c[..., :8], center_pos=lambda c: c[..., :8]),
             r'PanopticInitializer: centers of shape \(2, 128, 8\), expected B x K x D = '
             r'2 x K x 64'),
            (dict(query_classes=lambda q: q[:5]),
             r'query_classes of shape \(5,\), expected \(128,\)')):
        core.initializer.forward = broken(**change)
        with pytest.raises(ValueError, match=match):
            core.cluster(core.decode_pixels(x))
    from clustseg.models.initializers.base_initializer import BaseInitializer
    from clustseg.registry import MODELS

    class NoFixedK(BaseInitializer):  # a new initializer that leaves num_queries unset
        num_queries = None

    MODELS.register_module(name='_TestNoFixedKInitializer', module=NoFixedK, force=True)
    with pytest.raises(ValueError, match=r'thing_initializer \(NoFixedK\) has no '
                       'fixed num_queries'):
        PanopticInitializer(
            thing_initializer=dict(type='_TestNoFixedKInitializer'),
            stuff_initializer=dict(type='MemoryBankInitializer', num_classes=53, feat_dims=8,
                                   embed_dims=16))
