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
    n_dec = len(model.decoder.layers) * model.decoder.layers[0].cross_attn.num_iters
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
    assert 10 <= len(ids) <= 80


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
    with pytest.raises(ValueError, match='num_superpixels'):
        model.superpixels(torch.zeros(1, 3, 16, 16), 100)
