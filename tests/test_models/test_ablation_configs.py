"""The panoptic ablation configs (Tables 4-7) have the property that defines their table row."""
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from clustseg.registry import DATASETS, MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
A = ROOT / 'configs' / 'panoptic' / 'ablations'
MAIN = ROOT / 'configs' / 'panoptic' / 'clustseg_r50_8xb2-lsj-50e_coco-panoptic.py'


def _cfg(name):
    return Config.fromfile(str(MAIN if name == 'main' else A / name))


def _decoder(name, **over):
    """The config's ClusterDecoder at a small width (same variant / T / sharing)."""
    d = dict(_cfg(name).model.panoptic_head.decoder)
    d.update(in_channels=[16, 16, 16], embed_dims=16, num_heads=2, ffn_dims=32, **over)
    return MODELS.build(d)


def _run(decoder, train=True, k=5):
    torch.manual_seed(0)
    decoder.train(train)
    feats = [torch.randn(2, 16, s, s) for s in (3, 5, 7)]
    centers = torch.randn(2, k, 16, requires_grad=True)
    return decoder(centers, feats, return_logits=True), centers


def _model(name, **head):
    cfg = _cfg(name)
    cfg.model.panoptic_head.update(head)
    cfg.model.data_preprocessor.batch_augments = None  # no 1024 x 1024 padding on a CPU
    with DefaultScope.overwrite_default_scope('mmdet'):
        return cfg, MODELS.build(cfg.model)


def _batch(cfg, n=2):
    emb = Config.fromfile(str(ROOT / 'configs/panoptic/clustseg_compact_embedded.py'))
    for t in emb.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (160, 160)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = DATASETS.build(emb.train_dataloader.dataset)
        return pseudo_collate([ds[i] for i in range(n)])


def test_vanilla_attention_sums_to_one_over_pixels_without_clustering_loss():
    for name in ('clustseg_r50_vanilla-attn_coco-panoptic.py',
                 'clustseg_r50_baseline_coco-panoptic.py'):
        out, _ = _run(_decoder(name))
        assert all(s['iter'] == 0 for s in out['e_steps'])  # one attention per layer
        for s in out['e_steps']:
            torch.testing.assert_close(s['assigns'].sum(-1), torch.ones(2, 5))  # over pixels
        _, model = _model(name)
        assert not model.panoptic_head.supervise_e_step_maps  # no loss on the E-step maps
    _, model = _model('clustseg_r50_baseline_coco-panoptic.py')
    init = model.panoptic_head.core.initializer
    assert type(init.things).__name__ == type(init.stuff).__name__ == 'LearnedInitializer'


def test_kmeans_is_hard_non_recursive_and_trains_through_gumbel_softmax():
    dec = _decoder('clustseg_r50_kmeans-attn_coco-panoptic.py')
    assert dec.num_iters == 1 and not _model(
        'clustseg_r50_kmeans-attn_coco-panoptic.py')[1].panoptic_head.supervise_e_step_maps
    out, centers = _run(dec)
    for s in out['e_steps']:
        a = s['assigns']  # head-averaged one-hots: per head, each pixel in exactly one cluster
        torch.testing.assert_close(a.sum(1), torch.ones_like(a.sum(1)))
    rca = dec.layers[0].cross_attn
    q, k = torch.randn(1, 2, 5, 8), torch.randn(1, 2, 11, 8)
    _, assign, _ = rca.e_step(q, k)
    assert set(assign.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(assign.sum(-1), torch.ones(1, 2, 11))  # one-hot over the clusters
    out['centers'].sum().backward()  # straight-through: Q / K get gradients
    assert dec.layers[0].cross_attn.q_proj.weight.grad.abs().sum() > 0
    assert dec.layers[0].cross_attn.k_proj.weight.grad.abs().sum() > 0
    # the Gumbel noise comes from checkpointed state; at test the plain argmax
    dec.eval()
    with torch.no_grad():
        a1, a2 = (_run(dec, train=False)[0]['e_steps'][-1]['assigns'] for _ in range(2))
    assert torch.equal(a1, a2)


def test_kmeans_layers_draw_their_own_gumbel_noise():
    """Every layer's Gumbel E-step holds a StepRandom built from the one model seed: each
    draws its own noise (they drew the same before the decoder named their streams)."""
    def noise(dec):
        out = []
        for layer in dec.layers:
            rng = layer.cross_attn.variant.rng
            assert int(rng.step) == 0 and int(rng.seed) == torch.initial_seed()
            out.append(torch.rand(64, generator=rng.generator()))
        return out
    torch.manual_seed(1234)
    drawn = noise(_decoder('clustseg_r50_kmeans-attn_coco-panoptic.py'))
    assert len(drawn) == 6
    assert all(not torch.equal(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1:])
    # the same model built again from the same seed draws the same noise (resumable, and equal
    # on every rank)
    torch.manual_seed(1234)
    again = noise(_decoder('clustseg_r50_kmeans-attn_coco-panoptic.py'))
    assert all(torch.equal(a, b) for a, b in zip(drawn, again))


@pytest.mark.parametrize('t', [2, 3, 4, 5])
def test_unshared_layers_have_t_sets_of_projections(t):
    shared = _decoder('main', num_iters=t)
    unshared = _decoder(f'clustseg_r50_unshared-T{t}_coco-panoptic.py')
    assert unshared.num_iters == t
    n_shared = sum(p.numel() for p in shared.layers[0].cross_attn.parameters())
    ca = unshared.layers[0].cross_attn
    assert sum(p.numel() for p in ca.parameters()) == t * n_shared
    assert len({id(m) for m in ca.q_projs}) == t
    out, _ = _run(unshared)
    assert len(out['e_steps']) == 6 * t  # 6 layers x t one-step attentions
    # the full-size paper model: T x the projections of one recurrent layer, in all 6 layers
    cfg = _cfg(f'clustseg_r50_unshared-T{t}_coco-panoptic.py')
    full = MODELS.build(cfg.model.panoptic_head.decoder)
    base = MODELS.build(_cfg('main').model.panoptic_head.decoder)
    extra = sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in base.parameters())
    assert extra == (t - 1) * 6 * 3 * (256 * 256 + 256)


def test_deep_supervision_rows_and_test_iterations():
    cfg, model = _model('clustseg_r50_sup-per-layer_coco-panoptic.py')
    head = model.panoptic_head.train()
    batch = _batch(cfg)
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        x = model.extract_feat(data['inputs'])
        cls_list = head(x, data['data_samples']).cls_scores
        assert len(cls_list) == 6  # the last E-step of each of the 6 layers
        _, full = _model('main')
        full.load_state_dict(model.state_dict())
        full.panoptic_head.train()
        torch.manual_seed(0)
        out = full.panoptic_head(x, data['data_samples'])
        cls_all, mask_all = out.cls_scores, out.mask_preds
        assert len(cls_all) == 18  # every E-step
        for t in (0, 1):  # Table 7b: round t + 1 of the last layer predicts at test time
            _, m = _model(f'clustseg_r50_test-iter{t + 1}_coco-panoptic.py')
            m.load_state_dict(model.state_dict())
            m.panoptic_head.eval()
            out = m.panoptic_head(x, data['data_samples'])
            cls_t, mask_t = out.cls_scores, out.mask_preds
            assert len(cls_t) == 1
            torch.testing.assert_close(cls_t[0], cls_all[15 + t])
            torch.testing.assert_close(mask_t[0], mask_all[15 + t])


def test_dreamy_start_rows_tie_stuff_queries_to_classes():
    _, model = _model('clustseg_r50_learned-things-adaptive-stuff_coco-panoptic.py')
    init = model.panoptic_head.core.initializer
    assert type(init.things).__name__ == 'LearnedInitializer'
    assert type(init.stuff).__name__ == 'PooledImageAdaptiveInitializer'
    out = init(torch.randn(2, 256, 8, 8))
    assert out['query_classes'].tolist() == [-1] * 75 + list(range(80, 133))
    for name, things, stuff in (
            ('main', 'PooledImageAdaptiveInitializer', 'MemoryBankInitializer'),
            ('clustseg_r50_learned-stuff_coco-panoptic.py', 'PooledImageAdaptiveInitializer',
             'LearnedInitializer'),
            ('clustseg_r50_learned-things_coco-panoptic.py', 'LearnedInitializer',
             'MemoryBankInitializer'),
            ('clustseg_r50_learned-queries_coco-panoptic.py', 'LearnedInitializer',
             'LearnedInitializer')):
        init = _model(name)[1].panoptic_head.core.initializer
        assert (type(init.things).__name__, type(init.stuff).__name__) == (things, stuff), name


def test_bank_pos_rows_differ_from_the_recipes_only_in_the_center_positions():
    """clustseg_r50_bank-pos (panoptic and ADE20K): the recipe's memory-bank centers with a
    learned position each (53 stuff rows of the decoder's width); nothing else changes."""
    cfg, main = _cfg('clustseg_r50_bank-pos_coco-panoptic.py'), _cfg('main')
    stuff = cfg.model.panoptic_head.initializer.stuff_initializer
    assert stuff.learned_pos is True
    assert main.model.panoptic_head.initializer.stuff_initializer.learned_pos is False
    stuff.learned_pos = False
    assert cfg.to_dict() == main.to_dict()
    init = _model('clustseg_r50_bank-pos_coco-panoptic.py')[1].panoptic_head.core.initializer
    assert tuple(init.stuff.pos_embed.weight.shape) == (53, 256)
    assert init.things.num_queries == 75
    # the semantic twin: the ADE20K recipe's 150 class centers with positions, nothing else
    sem = ROOT / 'configs' / 'semantic'
    cfg = Config.fromfile(str(sem / 'ablations' /
                              'clustseg_r50_bank-pos_8xb2-100e_ade20k-640x640.py'))
    main = Config.fromfile(str(sem / 'clustseg_r50_8xb2-100e_ade20k-640x640.py'))
    assert cfg.model.decode_head.initializer.learned_pos is True
    assert main.model.decode_head.initializer.learned_pos is False
    cfg.model.decode_head.initializer.learned_pos = False
    assert cfg.to_dict() == main.to_dict()


def test_table_6_and_lr_rows():
    # Table 6's free-parameter rows, read as T = 4, 5, 6 (docs/method.md)
    for t in (4, 5, 6):
        cfg = _cfg(f'clustseg_r50_learned-queries-T{t}_coco-panoptic.py')
        assert cfg.model.panoptic_head.decoder.num_iters == t
        init = cfg.model.panoptic_head.initializer
        assert init.thing_initializer.type == 'LearnedInitializer'
        assert init.stuff_initializer.type == 'LearnedInitializer'
    cfg = _cfg('clustseg_r50_lr1e-5-all_coco-panoptic.py')
    assert cfg.optim_wrapper.optimizer.lr == 1e-5
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['backbone'].lr_mult == 1.0


def test_inner_points_row_differs_from_the_recipe_only_in_the_inner_supervision():
    """clustseg_r50_inner-points: the paper recipe with its 12 inner E-steps supervised at
    12544 points (Mask2Former's count for a 1024^2 crop); nothing else changes."""
    cfg, main = _cfg('clustseg_r50_inner-points_coco-panoptic.py'), _cfg('main')
    sup = cfg.model.panoptic_head.deep_supervision
    assert sup == dict(type='InnerEStepPoints', num_points=12544)
    assert main.model.panoptic_head.deep_supervision == dict(type='EveryEStep')
    cfg.model.panoptic_head.deep_supervision = dict(type='EveryEStep')
    assert cfg.to_dict() == main.to_dict()
    _, model = _model('clustseg_r50_inner-points_coco-panoptic.py')
    head = model.panoptic_head.train()
    states = [dict(iter=i) for _ in range(6) for i in range(3)] + [dict(iter=2)]
    # the E-steps before each layer's last are point-supervised, the layer outputs are not
    assert head.point_supervised(states) == [s['iter'] < 2 for s in states[:-1]] + [False]


@pytest.mark.parametrize('name, base', [
    ('clustseg_r50_inner-maps_coco-panoptic.py', 'main'),
    ('clustseg_compact_inner-maps_1xb8-1k_camvid-panoptic-240x180.py',
     '../clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py')])
def test_inner_maps_rows_differ_from_their_base_only_in_the_inner_supervision(name, base):
    """clustseg_*_inner-maps: the base config with the E-steps before each layer's last
    supervised through their assignment maps only; nothing else changes, and the head does
    it in training only."""
    cfg, main = _cfg(name), _cfg(base)
    assert cfg.model.panoptic_head.deep_supervision == dict(type='InnerEStepMaps')
    assert main.model.panoptic_head.deep_supervision == dict(type='EveryEStep')
    cfg.model.panoptic_head.deep_supervision = dict(type='EveryEStep')
    assert cfg.to_dict() == main.to_dict()
    _, model = _model(name)
    sup = model.panoptic_head.deep_supervision
    states = [dict(iter=i) for _ in range(6) for i in range(3)]
    # each layer's last E-step predicts, the 12 before it are supervised through their maps
    assert sup.predicting(states, 3) == states[2::3]
    assert sup.map_steps(states, 3) == tuple(s for s in states if s['iter'] < 2)
