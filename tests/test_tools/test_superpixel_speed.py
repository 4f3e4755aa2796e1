"""tools/analysis_tools/superpixel_speed.py on one real BSDS500 image with tiny settings."""
import json

import pytest

CFG = 'configs/superpixel/clustseg_compact_1xb4-1.2k_bsds500-superpixel.py'
CKPT = 'checkpoints/clustseg_compact_1xb4-1.2k_bsds500-superpixel.pth'


@pytest.fixture(scope='module')
def speed_tool(load_script):
    return load_script('tools/analysis_tools/superpixel_speed.py')


@pytest.mark.parametrize('mode', ['local', 'dense'])
def test_speed_tool_reports_every_stage(speed_tool, repo_root, tmp_path, capsys, mode):
    img = repo_root / 'tests' / 'data' / 'bsds500' / 'images' / 'val' / '101085.jpg'
    out = tmp_path / 'speed.json'
    report = speed_tool.main([str(repo_root / CFG), str(repo_root / CKPT), '--images', str(img),
                              '--k', '60', '--threads', '1', '--warmup', '0',
                              '--final-em-mode', mode, '--out', str(out)])
    printed = capsys.readouterr().out
    assert 'ratio model / SLIC' in printed and 'model: final_em' in printed
    saved = json.loads(out.read_text())
    assert saved['final_em_mode'] == mode and saved['k'] == 60
    (res,) = saved['results']
    assert res['threads'] == 1 and res['images'] == 1
    stages = res['stages_mean_s']
    assert set(stages) == set(speed_tool.STAGES)
    assert all(stages[s] > 0 for s in speed_tool.TORCH_STAGES), stages
    assert stages['network'] == 0
    assert res['model_mean_s'] == pytest.approx(sum(stages.values()), rel=1e-6)
    assert res['ratio'] == pytest.approx(res['model_mean_s'] / res['slic_mean_s'])
    (one,) = res['per_image']
    assert sorted(one['hw']) == [321, 481]  # a BSDS image, portrait or landscape
    assert 20 <= one['model_count'] <= 120 and 20 <= one['slic_count'] <= 120
    assert report['results'][0]['ratio'] == res['ratio']


def test_speed_tool_rejects_bad_arguments(speed_tool, tmp_path):
    with pytest.raises(SystemExit):
        speed_tool.parse_args(['c', 'k', '--images', 'x', '--k', '0'])
    with pytest.raises(SystemExit):
        speed_tool.parse_args(['c', 'k', '--images', 'x', '--threads', '-1'])
    with pytest.raises(FileNotFoundError, match='nope'):
        speed_tool.find_images([str(tmp_path / 'nope')])


def test_fuse_conv_bn_folds_every_bn_and_keeps_the_superpixels(speed_tool, repo_root):
    import torch.nn as nn

    from clustseg.datasets import read_image
    img_path = repo_root / 'tests' / 'data' / 'bsds500' / 'images' / 'val' / '101085.jpg'
    base = [str(repo_root / CFG), str(repo_root / CKPT), '--images', str(img_path)]
    plain = speed_tool.build_model(speed_tool.parse_args(base))
    fused = speed_tool.build_model(speed_tool.parse_args(base + ['--fuse-conv-bn']))
    bns = (nn.BatchNorm2d, nn.SyncBatchNorm)
    assert any(isinstance(m, bns) for m in plain.modules())
    assert not any(isinstance(m, bns) for m in fused.modules())
    img = read_image(str(img_path))
    a, _ = speed_tool.run_model(plain, img, 60)
    b, _ = speed_tool.run_model(fused, img, 60)
    assert a.shape == b.shape and (a == b).mean() > 0.999


def test_speed_tool_times_contrib_baselines(speed_tool, repo_root, tmp_path, capsys):
    """--contrib-baselines LSC SEEDS adds their times and counts (needs cv2.ximgproc; without
    it the run stops with the error that says how to add it)."""
    import cv2
    img = repo_root / 'tests' / 'data' / 'bsds500' / 'images' / 'val' / '101085.jpg'
    argv = [str(repo_root / CFG), str(repo_root / CKPT), '--images', str(img), '--k', '60',
            '--threads', '1', '--warmup', '0', '--contrib-baselines', 'LSC', 'SEEDS']
    if not hasattr(cv2, 'ximgproc'):
        with pytest.raises(RuntimeError, match='opencv-contrib-python-headless'):
            speed_tool.main(argv)
        return
    report = speed_tool.main(argv)
    printed = capsys.readouterr().out
    assert 'LSC (OpenCV contrib)' in printed and 'superpixels: SEEDS' in printed
    (res,) = report['results']
    assert set(res['contrib']) == {'LSC', 'SEEDS'}
    assert all(v['mean_s'] > 0 and v['count_mean'] >= 1 for v in res['contrib'].values())


def test_speed_tool_onnx_backend_times_network_and_connectivity(speed_tool, repo_root, tmp_path,
                                                                 capsys):
    """--backend onnx: the network in onnxruntime (exported in the warm-up), then the same
    connectivity step; the stages are network and connectivity."""
    pytest.importorskip('onnxruntime')
    img = repo_root / 'tests' / 'data' / 'bsds500' / 'images' / 'val' / '101085.jpg'
    report = speed_tool.main([str(repo_root / CFG), str(repo_root / CKPT), '--images', str(img),
                              '--k', '60', '--threads', '1', '--warmup', '1',
                              '--backend', 'onnx'])
    printed = capsys.readouterr().out
    assert 'model: network' in printed and 'model: backbone' not in printed
    (res,) = report['results']
    assert report['backend'] == res['backend'] == 'onnx'
    stages = res['stages_mean_s']
    assert stages['network'] > 0 and stages['connectivity'] > 0
    assert all(stages[s] == 0 for s in speed_tool.TORCH_STAGES[:-1])
    assert res['model_mean_s'] == pytest.approx(stages['network'] + stages['connectivity'])
    assert 20 <= res['per_image'][0]['model_count'] <= 120
