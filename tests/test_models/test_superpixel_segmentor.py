import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample

CFG = 'configs/_base_/models/clustseg_superpixel_compact.py'


@pytest.fixture(scope='module')
def model(repo_root):
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(str(repo_root / CFG)).model)


def _batch(model, imgs, labels, training):
    samples = []
    for img, lbl in zip(imgs, labels):
        ds = SegDataSample(metainfo=dict(img_shape=img.shape[-2:], ori_shape=img.shape[-2:]))
        ds.gt_sem_seg = PixelData(data=torch.as_tensor(lbl)[None].long())
        samples.append(ds)
    return model.data_preprocessor(dict(inputs=list(imgs), data_samples=samples), training)


def test_loss_every_e_step_supervised_and_padding_ignored(model):
    model.train()
    model.train_cfg['num_superpixels_range'] = (20, 20)
    imgs = [torch.randint(0, 255, (3, 64, 80), dtype=torch.uint8),
            torch.randint(0, 255, (3, 48, 80), dtype=torch.uint8)]  # padded to 64 x 80
    labels = [np.repeat(np.arange(4), 20)[None].repeat(64, 0) * 700,
              np.ones((48, 80), dtype=np.int64) * 3]
    data = _batch(model, imgs, labels, True)
    assert (data['data_samples'][1].gt_sem_seg.data[0, 48:] == -1).all()
    losses = model(**data, mode='loss')
    n_full = model.final_em.num_iters
    n_dec = len(model.core.decoder.layers) * model.core.decoder.layers[0].cross_attn.num_iters
    assert len([k for k in losses if k.startswith('full.')]) == 3 * n_full
    assert len([k for k in losses if k.startswith('d')]) == 3 * n_dec
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    # the learned pixel-embedding channels must train from the initial state (regression: with
    # both sides of the E-step zero-initialised there, their gradient was exactly zero)
    assert model.embed_head.fuse[-1].weight.grad.abs().sum() > 0
    assert model.embed_head.log_learned_scale.grad.abs() > 0
    model.zero_grad()


def test_predict_original_size_contiguous_labels(model):
    model.eval()
    img = torch.randint(0, 255, (3, 75, 97), dtype=torch.uint8)
    data = _batch(model, [img], [np.zeros((75, 97), dtype=np.int64)], False)
    model.test_cfg['num_superpixels'] = 40
    out = model(**data, mode='predict')[0]
    sp = out.pred_superpixels.data
    assert sp.shape == (1, 75, 97)
    ids = sp.unique()
    assert ids.tolist() == list(range(len(ids)))
    # an untrained model on pure noise: many fragments, merged up to min_size (0.25 HW / K
    # = 45 px), which bounds the count by HW / 45 = 161
    min_size = round(0.25 * 75 * 97 / 40)
    assert np.bincount(sp.flatten().numpy()).min() >= min_size
    assert 10 <= len(ids) <= 75 * 97 // min_size


def test_untrained_model_respects_a_colour_edge(model):
    """Colour and position channels make the untrained model a soft SLIC: no superpixel may
    straddle a sharp red/blue edge."""
    model.eval()
    img = torch.zeros(3, 64, 64, dtype=torch.uint8)
    img[2, :, :29] = 220  # BGR: red on the left (29 px, off the grid lines)
    img[0, :, 29:] = 220  # blue on the right
    data = _batch(model, [img], [np.zeros((64, 64), dtype=np.int64)], False)
    sp = model.superpixels(data['inputs'], 16)[0]
    for lbl in np.unique(sp):
        cols = np.nonzero(sp == lbl)[1]
        assert cols.max() < 29 or cols.min() >= 29, f'superpixel {lbl} crosses the edge'


def test_k_larger_than_pixels_is_an_error(model):
    model.eval()
    with pytest.raises(ValueError, match='num_superpixels') as e:
        model.superpixels(torch.zeros(1, 3, 16, 16), 100)
    assert 'largest K it allows is 4' in str(e.value)  # 2 x 2 stride-8 map


def test_k_too_large_in_predict_names_the_image(model):
    model.eval()
    model.test_cfg['num_superpixels'] = 100
    try:
        data = _batch(model, [torch.zeros(3, 16, 24, dtype=torch.uint8)],
                      [np.zeros((16, 24))], False)
        data['data_samples'][0].set_metainfo(dict(img_path='some/dir/tiny.jpg'))
        with pytest.raises(ValueError, match=r'tiny\.jpg.*largest K it allows is 6'):
            model.predict(data['inputs'], data['data_samples'])
    finally:
        model.test_cfg['num_superpixels'] = 600


@pytest.mark.parametrize('k', [0, -3])
def test_k_not_positive_is_an_error(model, k):
    model.eval()
    with pytest.raises(ValueError, match='num_superpixels must be an integer >= 1'):
        model.superpixels(torch.zeros(1, 3, 32, 32), k)


@pytest.mark.parametrize('key,value,match', [
    ('test_cfg', dict(num_superpixel=200), r"model\.test_cfg has unknown key\(s\) "
                                           r"\['num_superpixel'\]; allowed keys: "
                                           r"\['compactness', 'min_size_ratio', "
                                           r"'num_superpixels'\]"),
    ('train_cfg', dict(decoder_los_weight=0.1), r"model\.train_cfg has unknown key\(s\) "
                                               r"\['decoder_los_weight'\]"),
])
def test_unknown_cfg_keys_are_errors(repo_root, key, value, match):
    cfg = Config.fromfile(str(repo_root / CFG)).model
    cfg[key] = value
    with pytest.raises(KeyError, match=match):
        MODELS.build(cfg)


@pytest.mark.parametrize('key,value,match', [
    ('test_cfg', dict(num_superpixels=0), 'model.test_cfg.num_superpixels must be'),
    ('test_cfg', dict(compactness=0), 'model.test_cfg.compactness must be a number > 0'),
    ('test_cfg', dict(compactness='0.8'), 'model.test_cfg.compactness must be a number > 0'),
    ('train_cfg', dict(num_superpixels_range=(0, 10)), 'num_superpixels_range'),
    ('train_cfg', dict(num_superpixels_range=(30, 10)), 'num_superpixels_range'),
])
def test_bad_k_in_cfg_is_an_error(repo_root, key, value, match):
    cfg = Config.fromfile(str(repo_root / CFG)).model
    cfg[key] = value
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)


def test_compactness_weighs_the_position_channels_at_inference_only(repo_root):
    """test_cfg.compactness c scales the embedding's position channels (xy / S) by c at
    inference; the losses always use the trained weight (c = 1)."""
    cfg = Config.fromfile(str(repo_root / CFG)).model
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    m.eval()
    x = torch.randn(1, 3, 40, 56)
    seen = []
    head_forward = m.embed_head.forward

    def spy(img, lab, feat4, interval):
        out = head_forward(img, lab, feat4, interval)
        seen.append((interval, out[:, -2:].detach()))  # the two position channels
        return out

    m.embed_head.forward = spy
    with torch.no_grad():
        m.superpixels(x, 20)
        m.test_cfg['compactness'] = 0.5
        m.superpixels(x, 20)
        m.cluster(x, 20, compactness=2.0)
    torch.testing.assert_close(seen[1][1], seen[0][1] * 0.5)
    torch.testing.assert_close(seen[2][1], seen[0][1] * 2.0)
    m.train()
    m.train_cfg['num_superpixels_range'] = (20, 20)
    labels = [np.repeat(np.arange(4), 14)[None].repeat(40, 0)]
    imgs = [torch.randint(0, 255, (3, 40, 56), dtype=torch.uint8)]
    m(**_batch(m, imgs, labels, True), mode='loss')
    assert seen[3][0] == pytest.approx((40 * 56 / 20) ** 0.5)  # S itself, not S / 0.5


def test_k_draws_resume_exactly_and_agree_across_copies(repo_root):
    """K comes from the model's checkpointed StepRandom, not from a global RNG."""
    cfg = Config.fromfile(str(repo_root / CFG)).model
    torch.manual_seed(0)
    a = MODELS.build(cfg)
    torch.manual_seed(0)
    b = MODELS.build(cfg)  # a second rank built with the same seed
    draws_a = [a._sample_k(160, 160) for _ in range(5)]
    assert draws_a == [b._sample_k(160, 160) for _ in range(5)]
    assert len(set(draws_a)) > 1
    state = {k: v.clone() for k, v in a.state_dict().items()}
    expected = [a._sample_k(160, 160) for _ in range(5)]
    torch.manual_seed(123)
    c = MODELS.build(cfg)
    c.load_state_dict(state)  # --resume: the draws continue where the checkpoint stopped
    import random
    random.seed(99)
    assert [c._sample_k(160, 160) for _ in range(5)] == expected
    # a checkpoint from before this state loads without missing keys
    old = {k: v for k, v in state.items() if not k.startswith('k_random.')}
    result = c.load_state_dict(old, strict=False)
    assert not result.missing_keys
    # and the strict check of tools/test.py (ModelCheckHook) agrees with the load
    from clustseg.engine.hooks.model_check_hook import checkpoint_problem
    assert checkpoint_problem(c, {'state_dict': old}) is None
    assert 'backbone' in checkpoint_problem(
        c, {'state_dict': {k: v for k, v in old.items() if not k.startswith('backbone.')}})


@pytest.mark.parametrize('name', [
    'clustseg_compact_1xb4-1.2k_bsds500-superpixel', 'clustseg_compact_1xb4-3k_bsds500-superpixel',
    'clustseg_compact-fast_1xb4-3k_bsds500-superpixel'])
def test_shipped_superpixel_checkpoint_passes_the_strict_check(repo_root, name):
    """Each superpixel checkpoint of checkpoints/ fits its config of the same name as
    tools/test.py checks it (the 1.2k one predates the StepRandom state and lacks it)."""
    from clustseg.engine.hooks.model_check_hook import checkpoint_problem
    from clustseg.utils import load_from_checked_file
    ckpt = load_from_checked_file(str(repo_root / 'checkpoints' / f'{name}.pth'))
    cfg = Config.fromfile(str(repo_root / 'configs' / 'superpixel' / f'{name}.py'))
    assert checkpoint_problem(MODELS.build(cfg.model), ckpt) is None
    assert sorted(p.stem for p in (repo_root / 'checkpoints').glob('*.pth')) == sorted([
        'clustseg_compact_1xb4-1.2k_bsds500-superpixel',
        'clustseg_compact_1xb4-3k_bsds500-superpixel',
        'clustseg_compact-fast_1xb4-3k_bsds500-superpixel'])


def test_predict_at_another_original_size_gives_connected_superpixels(model):
    """A test pipeline that resized the image (ori_shape != img_shape): the labels are brought
    back by nearest sampling, which can cut thin superpixels; each is one 4-connected region
    of at least min_size pixels at the original size."""
    from scipy import ndimage
    model.eval()
    img = torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8)
    data = _batch(model, [img], [np.zeros((64, 96), dtype=np.int64)], False)
    data['data_samples'][0].set_metainfo(dict(ori_shape=(31, 43)))
    model.test_cfg['num_superpixels'] = 90
    sp = model(**data, mode='predict')[0].pred_superpixels.data[0].numpy()
    assert sp.shape == (31, 43)
    ids = np.unique(sp)
    assert ids.tolist() == list(range(len(ids)))
    for i in ids:
        assert ndimage.label(sp == i)[1] == 1, f'superpixel {i} is split'
    assert np.bincount(sp.ravel()).min() >= round(0.25 * 31 * 43 / 90)


def _check_connected_labels(sp, hw, k, min_size_ratio=0.25):
    """A label map after the connectivity step: contiguous ids, every region at least
    min_size_ratio * HW / K pixels (which bounds the count by HW / min_size)."""
    assert sp.shape == hw
    sizes = np.bincount(sp.ravel())
    min_size = round(min_size_ratio * hw[0] * hw[1] / k)
    assert sizes.min() >= min_size and 4 <= len(sizes) <= hw[0] * hw[1] // min_size


def _build(repo_root, **model_overrides):
    cfg = Config.fromfile(str(repo_root / CFG)).model
    cfg.update(model_overrides)
    torch.manual_seed(0)
    return MODELS.build(cfg)


def test_final_em_mode_bad_value_names_the_key(repo_root):
    with pytest.raises(ValueError, match=r"model\.final_em_mode='sparse' is not supported; "
                                         r"allowed values: \['local', 'dense'\]"):
        _build(repo_root, final_em_mode='sparse')


def test_final_iters_below_one_names_the_key(repo_root):
    with pytest.raises(ValueError, match=r'model\.final_iters must be an integer >= 1, got 0'):
        _build(repo_root, final_iters=0)


def test_k_range_beyond_the_crop_is_capped_with_a_warning(repo_root):
    """K above one seed per stride-8 cell of the training batch is capped; a warning names
    the key and the cap instead of training at the cap silently."""
    m = _build(repo_root, train_cfg=dict(num_superpixels_range=(5000, 6000)))
    with pytest.warns(UserWarning, match=r'num_superpixels_range=\(5000, 6000\): K is capped '
                      r'at 576, one seed per stride-8 cell of the 192 x 192 training batch; '
                      r'every batch trains at K=576'):
        assert m._sample_k(192, 192) == 576
    m = _build(repo_root, train_cfg=dict(num_superpixels_range=(20, 150)))
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # within the crop: no warning
        assert 20 <= m._sample_k(192, 192) <= 150


@pytest.mark.parametrize('mode', ['local', 'dense'])
def test_both_final_em_modes_train_and_predict(repo_root, mode):
    m = _build(repo_root, final_em_mode=mode)
    assert m.final_em_mode == mode
    m.train()
    m.train_cfg['num_superpixels_range'] = (12, 12)
    imgs = [torch.randint(0, 255, (3, 48, 64), dtype=torch.uint8) for _ in range(2)]
    labels = [np.repeat(np.arange(4), 16)[None].repeat(48, 0) for _ in range(2)]
    losses = m(**_batch(m, imgs, labels, True), mode='loss')
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert m.final_em.q_proj.weight.grad.abs().sum() > 0
    m.eval()
    sp = m.superpixels(_batch(m, imgs[:1], labels[:1], False)['inputs'], 12)[0]
    _check_connected_labels(sp, (48, 64), 12)


def test_local_mode_dense_maps_for_tools_match_the_local_labels(repo_root):
    """``cluster(dense_final=True)`` (the assignment-map tool) scatters the local maps; their
    argmax is the local hard assignment."""
    m = _build(repo_root).eval()
    img = torch.randint(0, 255, (3, 40, 56), dtype=torch.uint8)
    inputs = _batch(m, [img], [np.zeros((40, 56))], False)['inputs']
    with torch.no_grad():
        out = m.cluster(inputs, 20, return_all=True)
    grid = out['local']['grid']
    assert len(out['final']) == m.final_em.num_iters
    assert out['final'][-1].shape == (1, 20, 40 * 56)
    torch.testing.assert_close(out['final'][-1].sum(1), torch.ones(1, 40 * 56))
    assert torch.equal(out['final_logits'][-1].argmax(1),
                       grid.candidate_labels(out['local']['logits'][-1]))


def test_grid_center_positions_reach_the_decoder_in_its_encoding(repo_root, monkeypatch):
    """The decoder's queries get the initializer's center_pos, equal to the decoder's own key
    encoding at the seed's pixel of the seed level, per image (padding changes the unit)."""
    m = _build(repo_root).eval()
    seen = {}
    forward = m.core.decoder.forward

    def spy(centers, feats, pad_mask=None, center_pos=None, return_logits=False, **kw):
        seen.update(center_pos=center_pos, pad_mask=pad_mask, feat2=feats[2])
        return forward(centers, feats, pad_mask=pad_mask, center_pos=center_pos,
                       return_logits=return_logits, **kw)

    monkeypatch.setattr(m.core.decoder, 'forward', spy)
    imgs = [torch.randint(0, 255, (3, 64, 96), dtype=torch.uint8),
            torch.randint(0, 255, (3, 40, 64), dtype=torch.uint8)]  # padded to 64 x 96
    data = _batch(m, imgs, [np.zeros((64, 96)), np.zeros((40, 64))], True)  # pads the batch
    pad_mask = m.padding(data['inputs'], data['data_samples'])
    k = 96  # the 8 x 12 seed map: rows of 12, every seed at a pixel centre
    with torch.no_grad():
        m.cluster(data['inputs'], k, pad_mask, return_all=False)
    pos = seen['center_pos']
    assert pos is not None and pos.shape == (2, k, m.core.decoder.embed_dims)
    _, key_pos, kpm = m.core.decoder._flatten(seen['feat2'], 2, seen['pad_mask'])  # B x 96 x D
    assert kpm[1].sum() == 96 - 5 * 8 and not kpm[0].any()  # image 1: 5 x 8 valid cells
    keep = ~kpm  # seeds on padding have no key to compare with (the grid spans the batch)
    torch.testing.assert_close(pos[keep], key_pos[keep], rtol=0, atol=1e-5)
    assert not torch.allclose(pos[0], pos[1])  # image 1's valid long side is shorter


@pytest.mark.parametrize('variant', ['vanilla', 'kmeans'])
def test_decoder_variants_train_their_q_k_through_the_superpixel_loss(repo_root, variant):
    """Every decoder layer's Q and K projections get gradients from the superpixel losses,
    which read the E-steps' softmax over clusters (a distribution over K for every pixel)."""
    m = _build(repo_root, decoder=dict(variant=variant))
    m.train()
    m.train_cfg.update(num_superpixels_range=(16, 16), decoder_loss_weight=0.1)
    imgs = [torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8) for _ in range(2)]
    labels = [np.repeat(np.arange(4), 16)[None].repeat(64, 0) * 3 for _ in range(2)]
    data = _batch(m, imgs, labels, True)
    out = m.cluster(data['inputs'], 16, m.padding(data['inputs'], data['data_samples']),
                    dense_final=False)
    for es in out['e_steps']:  # what the loss supervises: a distribution over the K clusters
        torch.testing.assert_close(es['probs'].sum(1), torch.ones_like(es['probs'][:, 0]))
    m.zero_grad()
    sum(m(**data, mode='loss').values()).backward()
    for i, layer in enumerate(m.core.decoder.layers):
        ca = layer.cross_attn
        for name in ('q_proj', 'k_proj'):
            g = getattr(ca, name).weight.grad
            assert g is not None and g.abs().sum() > 0, (variant, i, name)


def _train_step_then_predict(m):
    """One loss + backward at K = 12 on two random 48 x 64 images (asserting that every
    parameter gets a gradient: DDP with find_unused_parameters=False), then the superpixels
    of one of them -> (losses, labels)."""
    m.train()
    m.train_cfg['num_superpixels_range'] = (12, 12)
    imgs = [torch.randint(0, 255, (3, 48, 64), dtype=torch.uint8) for _ in range(2)]
    labels = [np.repeat(np.arange(4), 16)[None].repeat(48, 0) for _ in range(2)]
    losses = m(**_batch(m, imgs, labels, True), mode='loss')
    sum(losses.values()).backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    m.eval()
    return losses, m.superpixels(_batch(m, imgs[:1], labels[:1], False)['inputs'], 12)[0]


def test_no_decoder_ablation_starts_from_the_grid_seeds_and_every_parameter_trains(repo_root):
    """initializer=None, decoder=None: no dreamy start and no decoder; the full-resolution E/M
    starts from the embedding at the seed points; every remaining parameter gets a gradient
    (DDP with find_unused_parameters=False), and only the full-resolution E-steps are
    supervised."""
    m = _build(repo_root, initializer=None, decoder=None)
    assert m.core.decoder is None and m.core.initializer is None and m.center_proj is None
    losses, sp = _train_step_then_predict(m)
    assert losses and all(k.startswith('full.') for k in losses)
    assert sp.shape == (48, 64)
    with pytest.raises(ValueError, match='both set or both None'):
        _build(repo_root, decoder=None)


def test_learned_queries_ablation_takes_the_first_k_rows_and_trains(repo_root):
    cfg = Config.fromfile(str(repo_root / CFG)).model
    cfg['initializer'] = dict(type='LearnedInitializer', num_queries=30, embed_dims=64,
                              variable_k=True)
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    m.train()
    m.train_cfg['num_superpixels_range'] = (12, 12)
    imgs = [torch.randint(0, 255, (3, 48, 64), dtype=torch.uint8) for _ in range(2)]
    labels = [np.repeat(np.arange(4), 16)[None].repeat(48, 0) for _ in range(2)]
    sum(m(**_batch(m, imgs, labels, True), mode='loss').values()).backward()
    g = m.core.initializer.embed.weight.grad
    assert g[:12].abs().sum() > 0 and g[12:].abs().sum() == 0
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    with pytest.raises(ValueError, match='has 30 queries; num_queries=31'):
        m.core.initializer(torch.zeros(1, 1, 8, 8), num_queries=31)


def test_decoder_level_labels_are_cell_centred(repo_root, monkeypatch):
    """Each decoder E-step's loss reads the label at its cells' centre pixels (the Lab target is
    the cell mean): with label = x, the stride-s cell j gets s j + s // 2."""
    m = _build(repo_root)
    m.train()
    m.train_cfg.update(num_superpixels_range=(16, 16), decoder_loss_weight=0.1)
    seen = {}
    add = m._add

    def spy(losses, prefix, assign, labels, lab, valid, weight):
        seen[prefix] = labels
        return add(losses, prefix, assign, labels, lab, valid, weight)

    monkeypatch.setattr(m, '_add', spy)
    img = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)
    lbl = np.arange(64)[None].repeat(64, 0)
    m(**_batch(m, [img], [lbl], True), mode='loss')
    for s, prefix in ((32, 'd0.i0'), (16, 'd1.i0'), (8, 'd2.i0')):
        want = torch.arange(64 // s) * s + s // 2
        assert torch.equal(seen[prefix][0, 0], want), prefix
    assert torch.equal(seen['full.i0'][0, 0], torch.arange(64))


def test_embed_head_stem_stride():
    """stem_stride=2: the learned channels come from a half-resolution stem and fusion,
    upsampled to the full (odd) size; colour and position stay per pixel."""
    from clustseg.models.heads.superpixel_embedding_head import SuperpixelEmbeddingHead
    torch.manual_seed(0)
    head = SuperpixelEmbeddingHead(16, embed_dims=8, stem_dims=8, stem_stride=2).eval()
    img, lab = torch.randn(1, 3, 37, 51), torch.rand(1, 3, 37, 51)
    out = head(img, lab, torch.randn(1, 16, 10, 13), interval=4.0)
    assert out.shape == (1, 8 + 5, 37, 51)
    torch.testing.assert_close(out[:, 8:11], lab * head.log_color_scale.exp())
    assert head.stem[0].stride == (2, 2)
    with pytest.raises(ValueError, match='embed_head.stem_stride must be 1 or 2'):
        SuperpixelEmbeddingHead(16, stem_stride=4)


def test_no_decoder_config_trains_every_parameter_and_predicts(repo_root):
    """The no-decoder config (the clustering is the full-resolution recurrent E/M from the grid
    seeds): no decoder or initializer parameters, every parameter gets a gradient (DDP with
    find_unused_parameters=False), prediction gives connected labels."""
    cfg = Config.fromfile(str(repo_root / 'configs/superpixel/'
                              'clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py')).model
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    assert m.core.decoder is None and m.core.initializer is None and m.center_proj is None
    assert [len(stage) for stage in m.core.pixel_decoder.stages[:2]] == [1, 2]
    losses, sp = _train_step_then_predict(m)
    assert losses and all(k.startswith('full.') for k in losses)
    _check_connected_labels(sp, (48, 64), 12)


def test_fast_config_trains_every_parameter_and_predicts(repo_root):
    """The fast shipped config (one local stride-8 decoder layer, stride-2 embedding stem):
    every parameter gets a gradient (DDP with find_unused_parameters=False), prediction
    gives connected labels."""
    cfg = Config.fromfile(str(repo_root / 'configs/superpixel/'
                              'clustseg_compact-fast_1xb4-3k_bsds500-superpixel.py')).model
    torch.manual_seed(0)
    m = MODELS.build(cfg)
    assert [layer.cross_attn.num_heads for layer in m.core.decoder.layers] == [1]
    losses, sp = _train_step_then_predict(m)
    assert any(k.startswith('d0.') for k in losses) and not any(k.startswith('d1.')
                                                                for k in losses)
    _check_connected_labels(sp, (48, 64), 12)


def test_backbone_channels_last_same_superpixels_and_state_dict(repo_root):
    """backbone_channels_last only changes the memory format: the state dict loads either
    way, the backbone features agree to float rounding and training still reaches every
    backbone parameter."""
    ref = _build(repo_root).eval()
    cl = _build(repo_root, backbone_channels_last=True).eval()
    cl.load_state_dict(ref.state_dict())
    conv = cl.backbone.conv1.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    img = torch.randint(0, 255, (3, 48, 64), dtype=torch.uint8)
    inputs = _batch(ref, [img], [np.zeros((48, 64))], False)['inputs']
    with torch.no_grad():
        a, b = ref.cluster(inputs, 12, return_all=False), cl.cluster(inputs, 12, return_all=False)
    torch.testing.assert_close(b['local']['logits'][-1], a['local']['logits'][-1], rtol=1e-4,
                               atol=1e-4)
    cl.train()
    cl.train_cfg['num_superpixels_range'] = (12, 12)
    labels = [np.repeat(np.arange(4), 16)[None].repeat(48, 0)]
    sum(cl(**_batch(cl, [img], labels, True), mode='loss').values()).backward()
    assert all(p.grad is not None for p in cl.backbone.parameters() if p.requires_grad)
