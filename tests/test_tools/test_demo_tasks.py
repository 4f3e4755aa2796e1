"""demo/image_demo.py for every task (superpixel / panoptic / instance) and the assignment-map
tool (tools/analysis_tools/assignment_maps.py) on the compact configs with randomly initialised
weights, on small real images; bad images are refused with the file-naming error."""
import importlib.util
import os
import os.path as osp
import re

import mmcv
import numpy as np
import pytest
import torch

from clustseg.apis import init_model
from clustseg.apis.inference import (detector_dataset_meta, inference_assignments,
                                     inference_detector)
from clustseg.utils import register_all_modules

PANOPTIC = 'configs/panoptic/clustseg_compact_embedded.py'
INSTANCE = 'configs/instance/clustseg_compact_embedded.py'
SUPERPIXEL = 'configs/superpixel/clustseg_compact_embedded.py'
PERSON = 0  # a COCO thing class


def _load_tool(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _restore_scope():
    """init_model switches mmengine's default scope (mmdet for detectors); the suite's is mmseg."""
    yield
    register_all_modules(init_default_scope=True, scope='mmseg')


@pytest.fixture(scope='module', autouse=True)
def _one_thread():
    """Small models and images: one thread is faster than two on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def demo(repo_root):
    return _load_tool(repo_root / 'demo' / 'image_demo.py', 'image_demo_tasks')


@pytest.fixture(scope='module')
def maps_tool(repo_root):
    return _load_tool(repo_root / 'tools' / 'analysis_tools' / 'assignment_maps.py',
                      'assignment_maps_tool')


@pytest.fixture(scope='module')
def files(repo_root, tmp_path_factory):
    """Small images (a COCO one, 90 x 120; a BSDS one, 64 x 96) and checkpoints of randomly
    initialised compact models. The detectors' class layers (the class FFNs of things and
    instances, the panoptic softmax classifier) are set to predict 'person' with a high
    probability from every (thing) query, so that their
    outputs pass the score thresholds."""
    tmp = tmp_path_factory.mktemp('demo_tasks')
    coco = mmcv.imread(str(repo_root / 'tests/data/coco_panoptic/val2017/000000039769.jpg'))
    bsds = mmcv.imread(str(repo_root / 'tests/data/bsds500/images/val/101085.jpg'))
    out = dict(coco=tmp / 'coco.png', bsds=tmp / 'bsds.png')
    mmcv.imwrite(mmcv.imresize(coco, (120, 90)), str(out['coco']))
    mmcv.imwrite(mmcv.imresize(bsds, (96, 64)), str(out['bsds']))
    # seed 1: the 53 stuff queries start at one shared memory-bank center (empty banks), so for
    # some random weights (seed 0) they take every pixel and no segment reaches mmdet's 0.5
    torch.manual_seed(1)
    for key, cfg in (('panoptic', PANOPTIC), ('instance', INSTANCE), ('superpixel', SUPERPIXEL)):
        model = init_model(str(repo_root / cfg))
        if key != 'superpixel':
            with torch.no_grad():
                head = model.panoptic_head
                if key == 'panoptic':  # stuff queries: the softmax classifier
                    head.cls_embed.weight.zero_()
                    head.cls_embed.bias.zero_()
                    head.cls_embed.bias[PERSON] = 8.0
                # things: the class FFN (panoptic thing FFN / instance class FFN)
                ffn = head.thing_cls_ffn if key == 'panoptic' else head.cls_ffn
                ffn[-1].weight.zero_()
                ffn[-1].bias.fill_(-8.0)
                ffn[-1].bias[PERSON] = 8.0
                if key == 'panoptic':
                    # its masks are a softmax over the queries: make the random ones peaked,
                    # so that segments hold pixels with probability >= 0.5 (mmdet's filter)
                    head.mask_predictor.embed[-1].weight.mul_(100.0)
                    head.mask_predictor.proj.weight.mul_(100.0)
        out[key] = tmp / f'{key}.pth'
        torch.save({'state_dict': model.state_dict(), 'meta': {}}, out[key])
        if key == 'panoptic':  # every query 'no object': an all-void panoptic prediction
            with torch.no_grad():
                head.cls_embed.bias.zero_()
                head.cls_embed.bias[-1] = 8.0
                head.thing_cls_ffn[-1].bias.fill_(-8.0)
            out['panoptic_void'] = tmp / 'panoptic_void.pth'
            torch.save({'state_dict': model.state_dict(), 'meta': {}}, out['panoptic_void'])
    # random masks of 128 confident queries overlap too much for mmdet's segment filter (a
    # segment keeps >= iou_thr of its mask): keep every segment
    out['panoptic_cfg'] = tmp / 'panoptic_all_segments.py'
    out['panoptic_cfg'].write_text(f"_base_ = [{str(repo_root / PANOPTIC)!r}]\n"
                                   'model = dict(test_cfg=dict(iou_thr=0.0))\n')
    register_all_modules(init_default_scope=True, scope='mmseg')
    return out


def _changed_fraction(a, b):
    return float((np.abs(a.astype(int) - b.astype(int)).sum(-1) > 30).mean())


def test_demo_superpixel(demo, files, repo_root, tmp_path, capsys):
    out = tmp_path / 'sp.png'
    demo.main([str(files['bsds']), str(repo_root / SUPERPIXEL), str(files['superpixel']),
               '--num-superpixels', '20', '--out-file', str(out), '--device', 'cpu'])
    drawn = mmcv.imread(str(out), channel_order='rgb')
    assert drawn.shape == (64, 96, 3)
    assert ((drawn == (255, 255, 0)).all(-1)).any()  # boundaries drawn
    assert re.search(r'\d+ superpixels -> ', capsys.readouterr().out)


def test_demo_panoptic(demo, files, repo_root, tmp_path, capsys):
    img = mmcv.imread(str(files['coco']), channel_order='rgb')
    out = tmp_path / 'pan.png'
    demo.main([str(files['coco']), str(files['panoptic_cfg']), str(files['panoptic']),
               '--task', 'panoptic', '--out-file', str(out), '--device', 'cpu'])
    drawn = mmcv.imread(str(out), channel_order='rgb')
    assert drawn.shape == img.shape == (90, 120, 3)
    segments, things = re.search(r'(\d+) segments \((\d+) things', capsys.readouterr().out) \
        .groups()
    assert int(segments) >= 1 and int(things) == int(segments)  # every query says 'person'
    assert _changed_fraction(drawn, img) > 0.2  # segments overlaid

    # all void (mmdet's drawing fails on no segment): the image itself, and it says so
    out = tmp_path / 'void.png'
    demo.main([str(files['coco']), str(repo_root / PANOPTIC), str(files['panoptic_void']),
               '--task', 'panoptic', '--out-file', str(out), '--device', 'cpu'])
    assert '0 segments (0 things, 0 stuff)' in capsys.readouterr().out
    drawn = mmcv.imread(str(out), channel_order='rgb')
    assert drawn.shape == img.shape and _changed_fraction(drawn, img) < 0.01


def test_test_py_draws_all_void_panoptic_predictions(files, repo_root, tmp_path):
    """tools/test.py --show-dir with a checkpoint that predicts no segment: every test image
    is drawn (the bare image) and the metrics are written; mmdet's drawing ended the run at
    the first such image (np.stack of no mask)."""
    import json
    import subprocess
    import sys
    show, out = tmp_path / 'show', tmp_path / 'metrics.json'
    done = subprocess.run(
        [sys.executable, 'tools/test.py', PANOPTIC, str(files['panoptic_void']), '--work-dir',
         str(tmp_path / 'work'), '--show-dir', str(show), '--out', str(out)],
        cwd=repo_root, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    drawn = sorted(p.name for p in show.rglob('*') if p.suffix in ('.jpg', '.png'))
    images = sorted(p.name for p in (repo_root / 'tests/data/coco_panoptic/val2017').glob('*.jpg'))
    assert drawn == images
    assert json.loads(out.read_text())['coco_panoptic/PQ'] == 0.0


def test_test_py_out_pickle_dumps_the_predictions(files, repo_root, tmp_path):
    """tools/test.py --out *.pkl pickles every test image's prediction (as mmdet's
    tools/test.py; a .json is the metrics); another suffix is refused before anything runs."""
    import subprocess
    import sys

    from mmengine.fileio import load
    cmd = [sys.executable, 'tools/test.py', PANOPTIC, str(files['panoptic']), '--work-dir',
           str(tmp_path / 'work'), '--out']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = tmp_path / 'preds.pkl'
    # a relative --show-dir is the working directory's folder (mmdet's hook would put it
    # under the work dir's timestamp folder)
    show_dir = osp.relpath(tmp_path / 'vis', repo_root)
    done = subprocess.run(cmd + [str(out), '--show-dir', show_dir], cwd=repo_root,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    preds = load(str(out))
    images = sorted(p.name for p in (repo_root / 'tests/data/coco_panoptic/val2017').glob('*.jpg'))
    assert sorted(osp.basename(p['img_path']) for p in preds) == images
    assert sorted(p.name for p in (tmp_path / 'vis').glob('*.jpg')) == images
    for p in preds:
        seg = p['pred_panoptic_seg']['sem_seg']
        assert tuple(seg.shape[-2:]) == tuple(p['ori_shape']) and 'gt_panoptic_seg' not in p
    assert 'predictions written to' in done.stdout + done.stderr
    done = subprocess.run(cmd + [str(tmp_path / 'preds.txt')], cwd=repo_root,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 2 and 'expected a .json (metrics) or .pkl' in done.stderr


def test_demo_instance(demo, files, repo_root, tmp_path, capsys):
    img = mmcv.imread(str(files['coco']), channel_order='rgb')
    outs = {}
    for thr in ('0.3', '1.0'):
        outs[thr] = tmp_path / f'ins_{thr}.png'
        demo.main([str(files['coco']), str(repo_root / INSTANCE), str(files['instance']),
                   '--task', 'instance', '--score-thr', thr, '--out-file', str(outs[thr]),
                   '--device', 'cpu'])
    printed = capsys.readouterr().out
    kept = [int(n) for n in re.findall(r'(\d+) instances with score > ', printed)]
    assert kept[0] >= 1 and kept[1] == 0
    shown = mmcv.imread(str(outs['0.3']), channel_order='rgb')
    none = mmcv.imread(str(outs['1.0']), channel_order='rgb')
    assert shown.shape == none.shape == img.shape
    assert _changed_fraction(none, img) < 0.01  # nothing above 1.0: the image itself
    assert _changed_fraction(shown, img) > 0.05  # masks / boxes drawn


@pytest.mark.parametrize('task', ['panoptic', 'instance', 'superpixel'])
def test_demo_infers_the_task_from_the_model(demo, files, repo_root, tmp_path, capsys, task):
    """Without --task a mask model is drawn as what it predicts (it was a raw AttributeError:
    the superpixel default on a detector)."""
    cfg = {'panoptic': PANOPTIC, 'instance': INSTANCE, 'superpixel': SUPERPIXEL}[task]
    img = files['bsds' if task == 'superpixel' else 'coco']
    extra = ['--num-superpixels', '20'] if task == 'superpixel' else []
    demo.main([str(img), str(repo_root / cfg), str(files[task]), '--device', 'cpu',
               '--out-file', str(tmp_path / 'o.png')] + extra)
    printed = capsys.readouterr().out
    assert f'task: {task} (from the model of ' in printed
    assert {'panoptic': ' segments (', 'instance': ' instances with score > ',
            'superpixel': ' superpixels -> '}[task] in printed
    assert (tmp_path / 'o.png').is_file()


def test_demo_task_the_model_cannot_do(demo, files, repo_root, tmp_path):
    with pytest.raises(SystemExit) as info:
        demo.main([str(files['coco']), str(repo_root / INSTANCE), str(files['instance']),
                   '--task', 'superpixel', '--device', 'cpu',
                   '--out-file', str(tmp_path / 'o.png')])
    assert str(info.value).startswith('error: --task superpixel needs a superpixel config, but ')
    assert 'builds an instance model (MaskFormer); use --task instance' in str(info.value)
    assert not (tmp_path / 'o.png').exists()


@pytest.mark.parametrize('option', [['--num-superpixels', '20'], ['--opacity', '0.3'],
                                    ['--mean-color'], ['--score-thr', '0.5']])
def test_option_of_another_task_is_refused(demo, files, repo_root, tmp_path, option):
    """An option of another task would be ignored without a word: an error instead."""
    with pytest.raises(SystemExit, match=rf'^error: {option[0]} is for --task \w+, but this '
                       'run draws panoptic: it would be ignored'):
        demo.main([str(files['coco']), str(repo_root / PANOPTIC), str(files['panoptic']),
                   '--device', 'cpu', '--out-file', str(tmp_path / 'o.png'), *option])


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without CUDA')
def test_cuda_device_without_cuda_is_named(demo, files, repo_root):
    with pytest.raises(SystemExit, match='^error: --device cuda:0, but torch sees no CUDA'):
        demo.main([str(files['coco']), str(repo_root / PANOPTIC), str(files['panoptic']),
                   '--device', 'cuda:0'])


def test_demo_cfg_options_change_the_config(demo, files, repo_root, tmp_path, capsys):
    """--cfg-options as in tools/test.py: a mask threshold no query passes leaves no segment;
    an unknown key is an error naming it."""
    out = tmp_path / 'pan.png'
    demo.main([str(files['coco']), str(files['panoptic_cfg']), str(files['panoptic']),
               '--task', 'panoptic', '--out-file', str(out), '--device', 'cpu'])
    assert not re.search(r'\b0 segments', capsys.readouterr().out)
    demo.main([str(files['coco']), str(files['panoptic_cfg']), str(files['panoptic']),
               '--task', 'panoptic', '--out-file', str(out), '--device', 'cpu',
               '--cfg-options', 'model.test_cfg.object_mask_thr=1.0'])
    assert '0 segments (0 things, 0 stuff)' in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"^error: model\.test_cfg has unknown key\(s\) "
                       r"\['nope'\]"):
        demo.main([str(files['coco']), str(files['panoptic_cfg']), str(files['panoptic']),
                   '--out-file', str(out), '--device', 'cpu',
                   '--cfg-options', 'model.test_cfg.nope.deeper=1'])


def test_checkpoint_of_another_model_is_refused(demo, files, repo_root, tmp_path):
    """The demo and the tools on init_model load checkpoints as tools/test.py does: a
    superpixel checkpoint with a panoptic config used to give '0 segments' and exit 0."""
    from clustseg.engine.hooks import ModelCheckError
    with pytest.raises(SystemExit, match=r'^error: checkpoint .*superpixel\.pth does not fit '
                       r'the model .* of .*\.py: .*Is it a checkpoint of this config\? To load '
                       r'the matching part anyway, pass --partial-load$'):
        demo.main([str(files['coco']), str(repo_root / PANOPTIC), str(files['superpixel']),
                   '--device', 'cpu', '--out-file', str(tmp_path / 'o.png')])
    assert not (tmp_path / 'o.png').exists()
    # --partial-load: the superpixel model without its backbone's weights draws
    sp = init_model(str(repo_root / SUPERPIXEL), str(files['superpixel']))
    torch.save({'state_dict': {k: v for k, v in sp.state_dict().items()
                               if not k.startswith('backbone.')}}, tmp_path / 'part.pth')
    args = [str(files['bsds']), str(repo_root / SUPERPIXEL), str(tmp_path / 'part.pth'),
            '--device', 'cpu', '--num-superpixels', '20', '--out-file', str(tmp_path / 'p.png')]
    with pytest.raises(SystemExit, match='pass --partial-load$'):
        demo.main(args)
    demo.main(args + ['--partial-load'])
    assert (tmp_path / 'p.png').exists()
    # partial_load: the matching part (here nothing of the panoptic model) loads, with a log
    model = init_model(str(repo_root / SUPERPIXEL), str(files['superpixel']))
    init_model(str(repo_root / PANOPTIC), str(files['superpixel']), partial_load=True)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
    torch.save({'state_dict': state}, tmp_path / 'no_backbone.pth')
    with pytest.raises(ModelCheckError, match='backbone'):
        init_model(str(repo_root / SUPERPIXEL), str(tmp_path / 'no_backbone.pth'))
    part = init_model(str(repo_root / SUPERPIXEL), str(tmp_path / 'no_backbone.pth'),
                      partial_load=True)
    k = next(iter(state))
    assert torch.equal(part.state_dict()[k], model.state_dict()[k])


def test_inference_detector_outputs(files, repo_root):
    model = init_model(str(repo_root / PANOPTIC), str(files['panoptic']))
    img = mmcv.imread(str(files['coco']))
    sample = inference_detector(model, img, img_path=str(files['coco']))
    assert tuple(sample.pred_panoptic_seg.sem_seg.shape) == (1, 90, 120)
    inst = sample.pred_instances
    assert inst.masks.shape[1:] == (90, 120) and len(inst) == len(inst.scores) <= 100
    # the (query, class) pairs of mmdet's protocol: the best detection is the image's person,
    # the rest are other thing classes of the same queries at lower scores
    assert int(inst.labels[inst.scores.argmax()]) == PERSON
    assert int(inst.labels.max()) < 80
    meta = detector_dataset_meta(model)
    assert len(meta['classes']) == 133 and meta['classes'][PERSON] == 'person'


def test_assignment_maps_panoptic(maps_tool, files, repo_root, tmp_path):
    out = tmp_path / 'maps'
    written = maps_tool.main([str(repo_root / PANOPTIC), str(files['panoptic']),
                              str(files['coco']), '--out-dir', str(out), '--tile-width', '60'])
    names = sorted(p.name for p in out.glob('layer*_iter*.png'))
    assert names == sorted(f'layer{l}_iter{t}.png' for l in range(3) for t in range(3))
    assert len(written) == 3 * 3 + 1 and sorted(p.name for p in out.iterdir()) == sorted(
        names + ['grid.png'])
    for name in names:
        assert mmcv.imread(str(out / name)).shape == (90, 120, 3)
    # 3 rows x 3 columns of 60-wide tiles (45 px image + 22 px caption), 4 px gaps
    assert mmcv.imread(str(out / 'grid.png')).shape == (3 * 67 + 8, 3 * 60 + 8, 3)


def test_assignment_maps_api_panoptic(files, repo_root):
    model = init_model(str(repo_root / PANOPTIC), str(files['panoptic']))
    maps = inference_assignments(model, str(files['coco']))
    assert [(m['layer'], m['iter']) for m in maps] == [(l, t) for l in range(3) for t in range(3)]
    # 128 clusters (75 things + 53 stuff); the 90 x 120 image is resized to 240 x 320 and
    # padded to 256 x 320: layers read strides 32, 16, 8
    assert {m['num_clusters'] for m in maps} == {128}
    assert [m['hw'] for m in maps[::3]] == [(8, 10), (16, 20), (32, 40)]
    for m in maps:
        assert m['labels'].shape == (90, 120) and m['labels'].dtype == np.int64
        assert 0 <= m['labels'].min() and m['labels'].max() < 128
    # a stride-32 map has at most 8 x 10 distinct cells; the stride-8 map is finer
    assert len(np.unique(maps[0]['labels'])) <= 80


def test_assignment_maps_superpixel(maps_tool, files, repo_root, tmp_path, capsys):
    out = tmp_path / 'maps'
    maps_tool.main([str(repo_root / SUPERPIXEL), str(files['superpixel']), str(files['bsds']),
                    '--out-dir', str(out), '--num-superpixels', '20'])
    names = sorted(p.name for p in out.glob('layer*_iter*.png'))
    assert names == sorted(f'layer{l}_iter{t}.png' for l in range(3) for t in range(3))
    finals = sorted(p.name for p in out.glob('final_iter*.png'))
    assert finals == [f'final_iter{t}.png' for t in range(3)]
    for name in names + finals:
        assert mmcv.imread(str(out / name)).shape == (64, 96, 3)
    assert (out / 'grid.png').is_file()
    printed = capsys.readouterr().out
    assert re.search(r'final_iter2: full res, iter 2, 64x96 map, \d+/20 clusters used', printed)
    # K too large for the image: the error names the image and the largest K
    with pytest.raises(SystemExit) as info:
        maps_tool.main([str(repo_root / SUPERPIXEL), str(files['superpixel']),
                        str(files['bsds']), '--out-dir', str(tmp_path / 'x'),
                        '--num-superpixels', '500'])
    assert str(files['bsds']) in str(info.value) and 'largest K it allows is 96' in str(info.value)


@pytest.mark.parametrize('name', ['truncated.jpg', 'empty.jpg', 'text.jpg', 'missing.jpg'])
def test_bad_image_named(demo, maps_tool, files, repo_root, tmp_path, name):
    img = str(repo_root / 'tests' / 'data' / 'bad' / 'images' / 'jpg' / name)
    expected = 'error: image file not found: ' if name == 'missing.jpg' else \
        'error: bad input image: '
    for task, cfg in (('panoptic', PANOPTIC), ('instance', INSTANCE)):
        out = tmp_path / f'{task}.png'
        with pytest.raises(SystemExit) as info:
            demo.main([img, str(repo_root / cfg), str(files[task]), '--task', task,
                       '--out-file', str(out), '--device', 'cpu'])
        assert str(info.value).startswith(expected) and img in str(info.value)
        assert not out.exists()
    with pytest.raises(SystemExit) as info:
        maps_tool.main([str(repo_root / PANOPTIC), str(files['panoptic']), img,
                        '--out-dir', str(tmp_path / 'maps')])
    assert str(info.value).startswith(expected) and img in str(info.value)
    assert not (tmp_path / 'maps').exists()
