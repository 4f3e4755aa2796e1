"""demo/image_demo.py --task semantic and clustseg.apis.inference_segmentor on the compact
ADE20K semantic config with randomly initialised weights, on a small real ADE20K image."""
import importlib.util

import mmcv
import numpy as np
import pytest
import torch

from clustseg.apis import (inference_assignments, inference_segmentor, init_model,
                           segmentor_dataset_meta)
from clustseg.utils import register_all_modules

SEMANTIC = 'configs/semantic/clustseg_compact_embedded_ade20k.py'
SUPERPIXEL = 'configs/superpixel/clustseg_compact_embedded.py'
SKY = 2  # an ADE20K class (after reduce_zero_label)


@pytest.fixture(autouse=True)
def _restore_scope():
    yield
    register_all_modules(init_default_scope=True, scope='mmseg')


@pytest.fixture(scope='module')
def files(repo_root, tmp_path_factory):
    """A 96 x 128 real ADE20K image and a checkpoint of the randomly initialised compact
    model."""
    tmp = tmp_path_factory.mktemp('semantic_demo')
    img = mmcv.imread(str(repo_root / 'tests/data/ade20k/images/validation/'
                          'ADE_val_00000001.jpg'))
    out = dict(img=tmp / 'ade.png', ckpt=tmp / 'semantic.pth')
    mmcv.imwrite(mmcv.imresize(img, (128, 96)), str(out['img']))
    torch.manual_seed(0)
    model = init_model(str(repo_root / SEMANTIC))
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, out['ckpt'])
    register_all_modules(init_default_scope=True, scope='mmseg')
    return out


def test_inference_segmentor(files, repo_root):
    model = init_model(str(repo_root / SEMANTIC), str(files['ckpt']))
    sample = inference_segmentor(model, str(files['img']))
    assert sample.pred_sem_seg.data.shape == (1, 96, 128)
    probs = sample.seg_logits.data
    assert probs.shape == (150, 96, 128)
    torch.testing.assert_close(probs.sum(0), torch.ones(96, 128), atol=1e-4, rtol=0)
    assert torch.equal(sample.pred_sem_seg.data[0], probs.argmax(0))
    # an array gives the same prediction as its file
    arr = mmcv.imread(str(files['img']))
    same = inference_segmentor(model, arr, img_path=str(files['img']))
    assert torch.equal(same.pred_sem_seg.data, sample.pred_sem_seg.data)
    meta = segmentor_dataset_meta(model)
    assert len(meta['classes']) == 150 and meta['classes'][SKY] == 'sky'
    with pytest.raises(TypeError, match='ClustSegSemanticHead'):
        inference_segmentor(init_model(str(repo_root / SUPERPIXEL)), str(files['img']))


def test_assignment_maps_api_semantic(files, repo_root):
    """Semantic models go through the same core as the other tasks: one hard assignment map
    per E-step of every decoder layer, over the 150 class centers."""
    model = init_model(str(repo_root / SEMANTIC), str(files['ckpt']))
    maps = inference_assignments(model, str(files['img']))
    layers = len(model.decode_head.core.decoder.layers)
    iters = model.decode_head.core.num_iters
    assert [(m['layer'], m['iter']) for m in maps] == [
        (lv, t) for lv in range(layers) for t in range(iters)]
    assert {m['num_clusters'] for m in maps} == {150}
    for m in maps:
        assert m['stage'] == 'decoder'
        assert m['labels'].shape == (96, 128) and 0 <= m['labels'].min() < 150
        assert m['labels'].max() < 150
    # strides 32, 16, 8 (one layer each in the compact config): finer maps, more cells
    assert [m['hw'][0] for m in maps[::iters]] == sorted(m['hw'][0] for m in maps[::iters])
    with pytest.raises(TypeError, match='no ClustSeg model'):
        inference_assignments(torch.nn.Module(), str(files['img']))


def test_demo_semantic(files, repo_root, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location('image_demo_semantic',
                                                  repo_root / 'demo' / 'image_demo.py')
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    out = tmp_path / 'sem.png'
    demo.main([str(files['img']), str(repo_root / SEMANTIC), str(files['ckpt']), '--task',
               'semantic', '--out-file', str(out), '--device', 'cpu'])
    img = mmcv.imread(str(files['img']), channel_order='rgb')
    drawn = mmcv.imread(str(out), channel_order='rgb')
    assert drawn.shape == img.shape == (96, 128, 3)
    changed = (np.abs(drawn.astype(int) - img.astype(int)).sum(-1) > 30).mean()
    assert changed > 0.2  # classes blended over the image
    assert ' classes (' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='semantic config'):
        demo.main([str(files['img']), str(repo_root / SUPERPIXEL), str(files['ckpt']),
                   '--task', 'semantic', '--out-file', str(tmp_path / 'x.png'),
                   '--device', 'cpu'])
