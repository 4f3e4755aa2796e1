"""tools/analysis_tools/superpixel_curve.py in --slic-only mode on the BSDS500 test subset."""
import csv

import numpy as np
import pytest

from clustseg.datasets.bsds_io import load_bsds_segmentations


@pytest.fixture(scope='module')
def curve_tool(load_script):
    return load_script('tools/analysis_tools/superpixel_curve.py')


@pytest.fixture(scope='module')
def bsds_root(repo_root):
    root = repo_root / 'tests' / 'data' / 'bsds500'
    assert (root / 'groundTruth' / 'val').is_dir(), f'committed BSDS500 subset missing at {root}'
    return root


def test_load_bsds_segmentations(bsds_root, tmp_path):
    mat = sorted((bsds_root / 'groundTruth' / 'val').glob('*.mat'))[0]
    segs = load_bsds_segmentations(str(mat))
    assert segs.ndim == 3 and segs.dtype == np.int64 and segs.shape[0] >= 1
    assert segs.shape[1:] in ((321, 481), (481, 321)) and segs.min() >= 1
    from scipy.io import savemat
    bad = tmp_path / 'bad.mat'
    savemat(str(bad), dict(foo=np.zeros(3)))
    with pytest.raises(ValueError, match='bad.mat'):
        load_bsds_segmentations(str(bad))
    with pytest.raises(FileNotFoundError, match='nope.mat'):
        load_bsds_segmentations(str(tmp_path / 'nope.mat'))


def test_slic_only_curve(curve_tool, bsds_root, tmp_path, capsys):
    out_dir = tmp_path / 'curve'
    rows = curve_tool.main([
        '--slic-only', '--data-root', str(bsds_root), '--split', 'val', '--ks', '100', '300',
        '--max-images', '2', '--out-dir', str(out_dir)
    ])
    assert (out_dir / 'curve.png').stat().st_size > 1000
    with open(out_dir / 'curve.csv') as f:
        table = list(csv.DictReader(f))
    assert [(r['method'], r['K']) for r in table] == [('SLIC', '100'), ('SLIC', '300'),
                                                      ('Grid', '100'), ('Grid', '300')]
    assert list(table[0]) == ['method', 'K', 'num_superpixels', 'ASA', 'UE', 'BR', 'BP', 'CO',
                              'sec_per_image', 'num_images']
    for r in table:
        assert r['num_images'] == '2'
        assert 0.5 < float(r['ASA']) <= 1 and 0 < float(r['BR']) <= 1
        assert 0 < float(r['CO']) <= np.pi / 4 + 1e-9
    by = {(r['method'], int(r['K'])): r for r in table}
    # more superpixels -> higher ASA and BR, larger actual count
    for m in ('SLIC', 'Grid'):
        assert float(by[m, 300]['num_superpixels']) > float(by[m, 100]['num_superpixels'])
        assert float(by[m, 300]['ASA']) > float(by[m, 100]['ASA'])
        assert float(by[m, 300]['BR']) > float(by[m, 100]['BR'])
    # SLIC adheres to boundaries better than the grid; the grid is more compact
    assert float(by['SLIC', 300]['BR']) > float(by['Grid', 300]['BR'])
    assert float(by['Grid', 300]['CO']) > float(by['SLIC', 300]['CO'])
    assert len(rows) == 4 and 'ASA' in capsys.readouterr().out


def test_cli_requires_model_args(curve_tool, tmp_path):
    with pytest.raises(SystemExit):
        curve_tool.parse_args(['--data-root', str(tmp_path), '--out-dir', str(tmp_path)])
    with pytest.raises(FileNotFoundError, match='images'):
        curve_tool.main(['--slic-only', '--data-root', str(tmp_path), '--out-dir',
                         str(tmp_path / 'o')])


def test_model_curve_with_cfg_options(curve_tool, bsds_root, repo_root, tmp_path):
    """--cfg-options reaches the model: a lower test_cfg.compactness gives less compact
    superpixels (the shipped model, one image)."""
    cfg = repo_root / 'configs/superpixel/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py'
    ckpt = repo_root / 'clustseg/weights/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.pth'
    co = {}
    for c in (0.5, 2.0):
        rows = curve_tool.main([
            str(cfg), str(ckpt), '--data-root', str(bsds_root), '--split', 'val', '--ks', '200',
            '--max-images', '1', '--no-grid', '--out-dir', str(tmp_path / str(c)),
            '--cfg-options', f'model.test_cfg.compactness={c}'])
        co[c] = [float(r['CO']) for r in rows if r['method'] == 'ClustSeg'][0]
    assert co[0.5] < co[2.0] - 0.05, co


def test_folder_layout_equals_bsds_layout(curve_tool, bsds_root, tmp_path):
    """The NYUv2 converter's layout (images/<id>.png, labels/<id>_<k>.png per annotator):
    the same images and annotators as BSDS files give the same curve."""
    import cv2
    folder = tmp_path / 'folder'
    (folder / 'images').mkdir(parents=True)
    (folder / 'labels').mkdir()
    mats = sorted((bsds_root / 'groundTruth' / 'val').glob('*.mat'))[:2]
    for mat in mats:
        img = cv2.imread(str(bsds_root / 'images' / 'val' / f'{mat.stem}.jpg'))
        cv2.imwrite(str(folder / 'images' / f'{mat.stem}.png'), img)  # lossless copy
        for k, seg in enumerate(load_bsds_segmentations(str(mat))):
            cv2.imwrite(str(folder / 'labels' / f'{mat.stem}_{k}.png'), seg.astype(np.uint16))
    common = ['--slic-only', '--ks', '100', '300', '--no-grid']
    bsds = curve_tool.main(common + ['--data-root', str(bsds_root), '--max-images', '2',
                                     '--out-dir', str(tmp_path / 'a')])
    ours = curve_tool.main(common + ['--layout', 'folder', '--data-root', str(folder),
                                     '--out-dir', str(tmp_path / 'b')])
    keys = ('method', 'K', 'num_images', 'num_superpixels', 'ASA', 'UE', 'BR', 'BP', 'CO')
    assert [[r[k] for k in keys] for r in ours] == [[r[k] for k in keys] for r in bsds]
