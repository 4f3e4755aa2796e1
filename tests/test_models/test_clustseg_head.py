"""ClustSegHead (panoptic/instance) on real COCO panoptic samples: memory-bank step from the
ground-truth stuff, losses independent of the global RNG, fixed stuff matching, eval output."""
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope

from clustseg.registry import DATASETS, MODELS

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]


@pytest.fixture(scope='module')
def setup():
    cfg = Config.fromfile(str(ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'))
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] == 'Resize':
            t['scale'] = (256, 256)
        if t['type'] == 'RandomFlip':
            t['prob'] = 0.0
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        batch = pseudo_collate([ds[0], ds[1]])
    return model, batch


def _loss(model, batch):
    with DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, True)
        return model(**data, mode='loss')


def test_memory_bank_filled_with_the_gt_stuff_classes_only(setup):
    model, batch = setup
    model.train()
    bank = model.panoptic_head.core.initializer.stuff
    bank.count.zero_()
    _loss(model, batch)
    num_things = model.panoptic_head.num_things_classes
    present = set()
    for ds in batch['data_samples']:
        sem = ds.gt_sem_seg.sem_seg.unique().tolist()
        present |= {c - num_things for c in sem if num_things <= c < 133}
    filled = set(torch.nonzero(bank.count).flatten().tolist())
    # every filled queue is a stuff class of the batch (nearest-downsampling may lose a tiny one)
    assert filled and filled <= present
    model.eval()
    before = bank.count.clone()
    with torch.no_grad(), DefaultScope.overwrite_default_scope('mmdet'):
        data = model.data_preprocessor(batch, False)
        out = model(**data, mode='predict')
    assert torch.equal(bank.count, before)  # frozen in eval
    assert out[0].pred_panoptic_seg.sem_seg.shape[-2:] == out[0].ori_shape
    model.train()


def test_loss_does_not_depend_on_the_global_rng(setup):
    """Point sampling draws from checkpointed state: same state -> same loss, whatever the
    global torch RNG holds (what makes --resume exact)."""
    model, batch = setup
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    a = _loss(model, batch)
    model.load_state_dict(state)
    torch.manual_seed(2)
    b = _loss(model, batch)
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    c = _loss(model, batch)  # the next step draws other pixels for the sampled terms
    assert any(not torch.equal(a[k], c[k]) for k in ('loss_insdis', 'loss_sem'))
    model.load_state_dict(state)


def test_stuff_queries_are_matched_to_their_own_class(setup):
    """Every E-step's matching (the head's one assign_many call per image and chunk): a stuff
    segment goes to its class's query, a thing segment to a thing query."""
    model, batch = setup
    head = model.panoptic_head
    head.train()
    seen = []
    real = head.assigner.assign_many

    def spy(scores, masks, gt_instances, query_stuff_classes):
        res = real(scores, masks, gt_instances, query_stuff_classes)
        seen.append((query_stuff_classes, gt_instances.labels, res))
        return res

    head.assigner.assign_many = spy
    try:
        _loss(model, batch)
    finally:
        del head.assigner.assign_many
    assert seen
    n_stuff = 0
    for qsc, labels, res in seen:
        for gt_inds in res:  # one row per E-step
            for q in torch.nonzero(gt_inds > 0).flatten().tolist():
                label = int(labels[gt_inds[q] - 1])
                if label >= head.num_things_classes:  # a stuff segment -> its class's query
                    assert int(qsc[q]) == label
                    n_stuff += 1
                else:  # a thing segment -> a thing query
                    assert int(qsc[q]) == -1
    assert n_stuff > 0


@pytest.mark.parametrize('key,value,match', [
    ('test_cfg', dict(panoptic_onn=True), r"model\.test_cfg has unknown key\(s\) \['panoptic_onn'\]"),
    ('train_cfg', dict(num_point=100), r"model\.train_cfg has unknown key\(s\) \['num_point'\]"),
    ('train_cfg', dict(num_insdis_samples=0), 'model.train_cfg.num_insdis_samples must be'),
    ('train_cfg', dict(mask_activation='relu'), 'model.train_cfg.mask_activation must be'),
])
def test_unknown_or_bad_cfg_keys_are_errors(key, value, match):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'panoptic' / 'clustseg_compact_embedded.py'))
    cfg.model[key].update(value)
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises((KeyError, ValueError),
                                                                      match=match):
        MODELS.build(cfg.model)


def test_eval_computes_only_the_rounds_it_predicts_from(setup):
    """At test time the head asks the core for each layer's last round only
    (``needs_inner_rounds``): no inner round gets output centers, the prediction is the one
    with every round computed; with ``test_iter`` the inner rounds are computed again."""
    from clustseg.models.core import needs_inner_rounds
    from clustseg.models.supervision import EveryEStep, LastEStepPerLayer
    model, batch = setup
    head = model.panoptic_head
    every, per_layer = EveryEStep(), LastEStepPerLayer()
    assert needs_inner_rounds(every, True) and not needs_inner_rounds(per_layer, True)
    assert not needs_inner_rounds(every, False) and needs_inner_rounds(every, False, 0)
    with DefaultScope.overwrite_default_scope('mmdet'), torch.no_grad():
        model.eval()
        data = model.data_preprocessor(batch, False)
        x = model.extract_feat(data['inputs'])
        out = head(x, data['data_samples'])
        inner = [s for s in out.core.states if s['iter'] < head.core.num_iters - 1]
        assert inner and all(s['centers'] is None for s in inner)
        full = head.core(x, out.core.padding, inner_rounds=True)
        assert torch.equal(full.centers, out.core.centers)
        assert torch.equal(full.states[-1]['centers'], out.states[-1]['centers'])
        head.test_iter = 0
        try:
            out0 = head(x, data['data_samples'])
        finally:
            head.test_iter = None
        assert torch.equal(out0.centers[0], head.mask_predictor.embed_centers(
            [s for s in full.states if s['layer'] == full.states[-1]['layer']][0]['centers'])[0])
        model.train()
