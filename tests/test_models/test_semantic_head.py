"""ClustSegSemanticHead in mmseg's EncoderDecoder on the real COCO-Stuff / ADE20K samples of
tests/data: memory bank filled from the ground truth (exactly the classes present), frozen in
eval, kept through a checkpoint; every parameter in the loss even when classes are absent; the
loss falls; padding, ignore labels, slide inference and config checks."""
import copy
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint, save_checkpoint

from clustseg.models.heads.clustseg_semantic_head import labels_at, upsample_to_input
from clustseg.models.layers.batch_padding import BatchPadding
from clustseg.registry import DATASETS, MODELS
from clustseg.utils import checkpoint as ckpt_utils

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
COCO_STUFF = ROOT / 'configs' / 'semantic' / 'clustseg_compact_embedded.py'
ADE = ROOT / 'configs' / 'semantic' / 'clustseg_compact_embedded_ade20k.py'
BANK_KEYS = ('queue', 'ptr', 'count', 'sampler.seed', 'sampler.step')


def _fixed_pipeline(cfg, size=128):
    """The config's train pipeline without random steps: resize to a ``size`` longer side."""
    load = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'].startswith('Load')]
    return load + [dict(type='Resize', scale=(size, size), keep_ratio=True),
                   dict(type='PackSegInputs')]


def _build(path=COCO_STUFF, size=128, **model_overrides):
    cfg = Config.fromfile(str(path))
    cfg.train_dataloader.dataset.pipeline = _fixed_pipeline(cfg, size)
    if model_overrides:
        cfg.merge_from_dict(model_overrides)
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        ds = DATASETS.build(cfg.train_dataloader.dataset)
    return cfg, model, ds


def _loss(model, batch):
    with DefaultScope.overwrite_default_scope('mmseg'):
        data = model.data_preprocessor(batch, True)
        return model(**data, mode='loss'), data


def _bank_state(model):
    sd = model.decode_head.core.initializer.state_dict()
    return {k: sd[k].clone() for k in BANK_KEYS}


@pytest.fixture(scope='module')
def coco():
    cfg, model, ds = _build()
    return cfg, model, ds, pseudo_collate([ds[0], ds[1]])


def test_memory_bank_holds_exactly_the_classes_of_a_real_label_map(coco):
    _, model, ds, _ = coco
    bank = model.decode_head.core.initializer
    bank.train()
    label = ds[0]['data_samples'].gt_sem_seg.data[0].long()  # real map, 0..170 / 255
    present = set(label.unique().tolist()) - {255}
    assert len(present) >= 2
    for k in BANK_KEYS[:3]:
        getattr(bank, k).zero_()
    feats = torch.randn(1, bank.queue.shape[-1], *label.shape)  # one embedding per pixel
    bank.update(feats, label[None])
    assert set(bank.count.nonzero().flatten().tolist()) == present
    for k in present:  # up to samples_per_class embeddings, each an embedding of class k
        n = int((label == k).sum())
        assert int(bank.count[k]) == min(n, bank.samples_per_class)
        rows = feats[0].flatten(1).t()[(label == k).flatten()]
        for q in bank.queue[k, :int(bank.count[k])]:
            assert bool((rows == q).all(1).any())


def test_training_step_fills_the_bank_from_the_batch_ground_truth(coco):
    _, model, _, batch = coco
    model.train()
    bank = model.decode_head.core.initializer
    for k in BANK_KEYS[:3]:
        getattr(bank, k).zero_()
    losses, data = _loss(model, batch)
    labels = torch.stack([ds.gt_sem_seg.data[0] for ds in data['data_samples']]).long()
    hw = model.decode_head.core.pixel_decoder(
        model.extract_feat(data['inputs']))[1].shape[-2:]  # the bank's level, stride 16
    seen = F.interpolate(labels[:, None].float(), size=tuple(hw), mode='nearest').long()
    expected = set(seen.unique().tolist()) - {255}
    assert expected and set(bank.count.nonzero().flatten().tolist()) == expected
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


def test_eval_never_writes_to_the_bank(coco):
    _, model, ds, batch = coco
    model.train()
    _loss(model, batch)  # a filled bank
    before = _bank_state(model)
    model.eval()
    with DefaultScope.overwrite_default_scope('mmseg'), torch.no_grad():
        data = model.data_preprocessor(pseudo_collate([ds[2]]), False)
        out = model(**data, mode='predict')
        model.decode_head.core.initializer.update(torch.randn(1, before['queue'].shape[-1], 8, 8),
                                             torch.zeros(1, 8, 8, dtype=torch.long))
    after = _bank_state(model)
    for k in BANK_KEYS:
        assert torch.equal(before[k], after[k]), k
    assert out[0].pred_sem_seg.data.shape[-2:] == tuple(out[0].metainfo['ori_shape'])


def test_bank_survives_a_checkpoint_round_trip(coco, tmp_path):
    cfg, model, _, batch = coco
    model.train()
    _loss(model, batch)
    saved = _bank_state(model)
    assert int(saved['count'].sum()) > 0
    path = str(tmp_path / 'iter_1.pth')
    save_checkpoint(model.state_dict(), path)
    # weights-only loading through the project's loader (what Runner resume / load_from use)
    raw = ckpt_utils.load_from_checked_file(path, map_location='cpu')
    for k in BANK_KEYS:
        assert torch.equal(raw['decode_head.core.initializer.' + k], saved[k]), k
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(1)
        fresh = MODELS.build(cfg.model)
    assert int(fresh.decode_head.core.initializer.count.sum()) == 0
    load_checkpoint(fresh, path, map_location='cpu', strict=True)
    for k, v in _bank_state(fresh).items():
        assert torch.equal(v, saved[k]), k


def test_every_parameter_gets_a_gradient_when_classes_are_absent(coco):
    """One image, most classes absent (their centers are still in the loss: the softmax over
    K and the per-class dice), including never-filled banks (fallback vectors)."""
    cfg, _, ds, _ = coco
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).train()
    losses, _ = _loss(model, pseudo_collate([ds[0]]))
    loss, _ = model.parse_losses(losses)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert model.decode_head.core.initializer.fallback.grad.abs().sum() > 0


def test_loss_falls_on_the_real_samples():
    cfg, model, ds = _build(size=96)
    batch = pseudo_collate([ds[i] for i in range(4)])
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(12):
        losses, _ = _loss(model, batch)
        loss, logs = model.parse_losses(losses)
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(float(logs['decode.loss_ce'].detach()))
    assert history[-1] < 0.8 * history[0], history
    assert int((model.decode_head.core.initializer.count > 0).sum()) >= 10


def test_losses_every_e_step_and_deep_supervision_modes():
    for mode, n in (('EveryEStep', 9), ('LastEStepPerLayer', 3),
                    (dict(type='OutputOnly'), 1)):
        _, model, ds = _build(size=64, model=dict(decode_head=dict(deep_supervision=mode)))
        model.train()
        losses, _ = _loss(model, pseudo_collate([ds[0]]))
        assert len([k for k in losses if k.endswith('loss_ce')]) == n, mode
        assert len([k for k in losses if k.endswith('loss_dice')]) == n, mode


def test_step_losses_are_ce_of_the_k_way_softmax_and_per_class_dice():
    _, model, _ = _build(size=64)
    head = model.decode_head
    k = head.num_classes
    target = torch.randint(0, k, (2, 6, 5))
    target[0, 0] = 255  # ignored
    logits = torch.randn(2, k, 6, 5)
    ce, dice = head.step_losses(logits, target)
    torch.testing.assert_close(ce, F.cross_entropy(logits, target, ignore_index=255))
    perfect = F.one_hot(torch.where(target == 255, 0, target), k).permute(0, 3, 1, 2) * 60.0
    ce0, dice0 = head.step_losses(perfect.float(), target)
    assert float(ce0) < 1e-6 and float(dice0) < 1e-6
    ref = []  # naive dice (eps 1) per image over the classes present among its labelled pixels
    prob = logits.softmax(1)
    for b in range(2):
        valid = target[b] != 255
        per_class = []
        for c in target[b][valid].unique().tolist():
            p, y = prob[b, c][valid], (target[b][valid] == c).float()
            per_class.append(1 - (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1))
        ref.append(torch.stack(per_class).mean())
    torch.testing.assert_close(dice, torch.stack(ref).mean())


def test_dice_runs_over_the_classes_present():
    """An image with 2 of K classes: the dice is that of those 2 classes (the average over all
    K, absent ones included, is diluted towards 0 by the absent classes' near-zero terms); an
    image without labelled pixels does not count."""
    _, model, _ = _build(size=64)
    head = model.decode_head
    k = head.num_classes
    target = torch.full((2, 4, 4), 255)
    target[0, :2], target[0, 2:] = 3, 7
    logits = torch.zeros(2, k, 4, 4)
    logits[0, 3, :2] = 2.0  # class 3 partly right, class 7 not predicted
    _, dice = head.step_losses(logits, target)
    prob = logits[0].softmax(0).flatten(1)
    y = F.one_hot(target[0].flatten(), k).t().float()
    per_class = 1 - (2 * (prob * y).sum(-1) + 1) / (prob.sum(-1) + y.sum(-1) + 1)
    torch.testing.assert_close(dice, per_class[[3, 7]].mean())
    assert float(dice) > 2 * float(per_class.mean())  # the all-class average is far lower


def test_labels_at_takes_each_cell_centre_and_upsampling_inverts_the_stride():
    labels = torch.arange(10 * 9).view(1, 10, 9)
    small = labels_at(labels, (3, 3))  # stride 4: cells [0,4), [4,8), [8,10) -> rows 2, 6, 9
    assert small[0, :, 0].tolist() == [labels[0, 2, 2].item(), labels[0, 6, 2].item(),
                                       labels[0, 9, 2].item()]
    x = torch.randn(1, 2, 3, 3)
    assert upsample_to_input(x, (10, 9)).shape[-2:] == (10, 9)
    const = torch.ones(1, 1, 3, 3)
    assert torch.allclose(upsample_to_input(const, (10, 9)), torch.ones(1, 1, 10, 9))


def test_padding_is_masked_and_ignored():
    """Two images of different sizes in one batch: padded pixels are padding in the mask, 255
    in the labels, and the image's own prediction does not see the other image's size."""
    _, model, ds = _build(size=96)
    batch = pseudo_collate([ds[0], ds[5]])  # 500 x 375 and 640 x 382
    shapes = [tuple(s.metainfo['img_shape']) for s in batch['data_samples']]
    assert shapes[0] != shapes[1], shapes
    model.train()
    with DefaultScope.overwrite_default_scope('mmseg'):
        data = model.data_preprocessor(batch, True)
    metas = [s.metainfo for s in data['data_samples']]
    mask = BatchPadding.from_metas(metas, 'cpu').mask_at(data['inputs'].shape[-2:])
    assert mask.shape[-2:] == data['inputs'].shape[-2:]
    for i, (h, w) in enumerate(shapes):
        assert not mask[i, :h, :w].any() and mask[i].sum() == mask[i].numel() - h * w
        gt = data['data_samples'][i].gt_sem_seg.data[0]
        assert bool((gt[mask[i]] == 255).all())
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for k, v in losses.items() if 'loss' in k)


def test_slide_and_whole_inference_give_class_probabilities():
    cfg, model, ds = _build(path=ADE, size=64)
    model.eval()
    with DefaultScope.overwrite_default_scope('mmseg'), torch.no_grad():
        val = DATASETS.build(cfg.val_dataloader.dataset)
        data = model.data_preprocessor(pseudo_collate([val[0]]), False)
        whole = model(**data, mode='predict')[0]
        probs = model.encode_decode(data['inputs'], [data['data_samples'][0].metainfo])
        torch.testing.assert_close(probs.sum(1), torch.ones_like(probs[:, 0]))
        model.test_cfg = copy.deepcopy(model.test_cfg)
        model.test_cfg.update(mode='slide', crop_size=(128, 128), stride=(96, 96))
        data = model.data_preprocessor(pseudo_collate([val[0]]), False)
        slide = model(**data, mode='predict')[0]
    ori = tuple(whole.metainfo['ori_shape'])
    assert whole.pred_sem_seg.data.shape[-2:] == ori == slide.pred_sem_seg.data.shape[-2:]
    assert whole.seg_logits.data.shape[0] == 150
    assert int(whole.pred_sem_seg.data.max()) < 150


def test_config_errors():
    cfg, model, ds = _build(size=64)
    model.train()
    batch = pseudo_collate([ds[0]])
    model.train_cfg = dict(typo=1)
    with pytest.raises(KeyError, match='typo'):
        _loss(model, batch)
    model.train_cfg = dict()
    model.eval()
    model.test_cfg = ConfigDict(mode='whole', crop_sise=(1, 1))
    with pytest.raises(KeyError, match='crop_sise'), torch.no_grad(), \
            DefaultScope.overwrite_default_scope('mmseg'):
        data = model.data_preprocessor(batch, False)
        model(**data, mode='predict')
    model.train()
    bad = pseudo_collate([ds[0]])
    bad['data_samples'][0].gt_sem_seg.data[0, 0, 0] = 200  # not a COCO-Stuff train id
    seg_file = bad['data_samples'][0].metainfo['seg_map_path']
    with pytest.raises(ValueError, match=r'\[200\] are outside .*' + re.escape(seg_file)):
        _loss(model, bad)
    with pytest.raises(ValueError, match='one per class'):
        _build(size=64, model=dict(decode_head=dict(initializer=dict(num_classes=150))))
    with pytest.raises(ValueError, match='deep_supervision'):
        _build(size=64, model=dict(decode_head=dict(deep_supervision='some')))
    # the semantic loss has no map-only or point-supervised E-steps
    for sup in ('InnerEStepMaps', 'InnerEStepPoints'):
        with pytest.raises(ValueError, match=r'model\.decode_head\.deep_supervision='
                           f'{sup}: ClustSegSemanticHead has no loss'):
            _build(size=64, model=dict(decode_head=dict(deep_supervision=sup)))
    with pytest.raises(ValueError, match=r'dice_eps must be > 0, got 0'):  # 0 / 0: a NaN loss
        _build(size=64, model=dict(decode_head=dict(dice_eps=0)))


def test_a_batch_without_labelled_pixels_warns_naming_its_files():
    """All labels ignore_index (e.g. a wrong reduce_zero_label): the losses are zero, so the
    batch would train nothing in silence; a batch with labels does not warn."""
    cfg, model, ds = _build(size=64)
    model.train()
    batch = pseudo_collate([ds[0], ds[1]])
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        _loss(model, batch)
    for sample in batch['data_samples']:
        sample.gt_sem_seg.data[...] = 255
    files = [s.metainfo['seg_map_path'] for s in batch['data_samples']]
    with pytest.warns(UserWarning, match='no labelled pixel') as record:
        losses, _ = _loss(model, batch)
    assert all(f in str(record[0].message) for f in files)
    assert float(losses['decode.loss_ce']) == 0 and float(losses['decode.loss_dice']) == 0


def test_convnext_test_images_are_padded_so_every_stride_is_exact():
    """ConvNeXt rounds odd sizes down at its stem and downsampling layers: the ConvNeXt
    semantic config pads test images to a multiple of 32, so its stride-32 map covers the
    image, and the prediction is cropped back to the image."""
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(str(ROOT / 'configs' / 'semantic' /
                              'clustseg_convnext-b_8xb2-100e_ade20k-640x640.py'))
    cfg.model.backbone.init_cfg = None  # random weights: nothing is downloaded
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model).eval()
        h, w = 50, 77
        sample = SegDataSample(metainfo=dict(ori_shape=(h, w), img_shape=(h, w)))
        data = model.data_preprocessor(
            dict(inputs=[torch.randint(0, 255, (3, h, w), dtype=torch.uint8)],
                 data_samples=[sample]), False)
        assert tuple(data['inputs'].shape[-2:]) == (64, 96)
        with torch.no_grad():
            feats = model.extract_feat(data['inputs'])
            out = model.predict(data['inputs'], data['data_samples'])
    assert [tuple(f.shape[-2:]) for f in feats] == [(64 // s, 96 // s) for s in (4, 8, 16, 32)]
    assert tuple(out[0].pred_sem_seg.data.shape[-2:]) == (h, w)
