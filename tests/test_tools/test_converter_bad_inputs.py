"""The dataset converters on bad inputs: each stops with one ``error:`` line naming the file
(no traceback), and on good inputs writes what it wrote before."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

PANOPTIC = 'tests/data/coco_panoptic/annotations'


@pytest.fixture(scope='module')
def pan2inst(load_script):
    return load_script('tools/dataset_converters/panoptic_to_instances.py')


@pytest.fixture(scope='module')
def stuff(load_script):
    return load_script('tools/dataset_converters/coco_stuff164k.py')


def _error(main, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert str(exc.value).startswith('error: '), exc.value
    return str(exc.value)


def test_panoptic_to_instances_writes_the_committed_file(pan2inst, repo_root, tmp_path):
    out = tmp_path / 'instances.json'
    pan2inst.main([f'{repo_root / PANOPTIC}/panoptic_val2017.json',
                   f'{repo_root / PANOPTIC}/panoptic_val2017', str(out)])
    committed = json.loads((repo_root / PANOPTIC / 'instances_val2017.json').read_text())
    assert json.loads(out.read_text()) == committed
    assert not list(tmp_path.glob('*.tmp'))


def test_panoptic_to_instances_names_the_bad_file(pan2inst, repo_root, tmp_path):
    src = repo_root / PANOPTIC
    pngs = tmp_path / 'pngs'
    shutil.copytree(src / 'panoptic_val2017', pngs)
    pan = json.loads((src / 'panoptic_val2017.json').read_text())
    good = tmp_path / 'pan.json'
    good.write_text(json.dumps(pan))
    out = str(tmp_path / 'out.json')

    first = pngs / pan['annotations'][0]['file_name']
    data = first.read_bytes()
    first.write_bytes(data[:len(data) // 2])
    msg = _error(pan2inst.main, [str(good), str(pngs), out])
    assert str(first) in msg and 'truncated PNG' in msg
    first.unlink()
    msg = _error(pan2inst.main, [str(good), str(pngs), out])
    assert str(first) in msg and f'of image {pan["annotations"][0]["image_id"]} not found' in msg

    text = tmp_path / 'text.json'
    text.write_text('{"images": [')
    msg = _error(pan2inst.main, [str(text), str(pngs), out])
    assert str(text) in msg and 'not a JSON file' in msg
    other = repo_root / PANOPTIC / 'instances_val2017.json'  # the instance file, by mistake
    msg = _error(pan2inst.main, [str(other), str(pngs), out])
    assert str(other) in msg and 'annotations[0] has no file_name and segments_info' in msg
    bare = tmp_path / 'bare.json'
    bare.write_text(json.dumps({'images': [], 'categories': []}))
    msg = _error(pan2inst.main, [str(bare), str(pngs), out])
    assert str(bare) in msg and "'annotations'" in msg
    assert not (tmp_path / 'out.json').exists()


def test_coco_stuff_names_the_bad_file(stuff, repo_root, tmp_path):
    ann = tmp_path / 'annotations' / 'val2017'
    ann.mkdir(parents=True)
    ids = np.array([[0, 11, 12], [91, 181, 255]], dtype=np.uint8)
    Image.fromarray(ids).save(ann / 'a.png')
    stuff.main([str(tmp_path)])
    assert np.array(Image.open(ann / 'a_labelTrainIds.png')).tolist() == \
        [[0, 255, 11], [80, 170, 255]]

    data = (ann / 'a.png').read_bytes()
    (ann / 'b.png').write_bytes(data[:len(data) - 8])  # IEND cut off
    msg = _error(stuff.main, [str(tmp_path)])
    assert str(ann / 'b.png') in msg and 'truncated PNG' in msg
    Image.fromarray(np.stack([ids] * 3, axis=-1)).save(ann / 'b.png')  # RGB, not ids
    # the command with worker processes: the error crosses the pool, no traceback
    done = subprocess.run([sys.executable, 'tools/dataset_converters/coco_stuff164k.py',
                           str(tmp_path), '--nproc', '2'], cwd=repo_root, capture_output=True,
                          text=True)
    assert done.returncode == 1 and 'Traceback' not in done.stderr, done.stderr[-2000:]
    assert done.stderr.startswith(f'error: {ann / "b.png"}: ') and 'H x W uint8' in done.stderr
    (ann / 'b.png').write_bytes(b'')
    msg = _error(stuff.main, [str(tmp_path)])
    assert str(ann / 'b.png') in msg


def test_nyuv2_names_the_bad_file(load_script, tmp_path):
    conv = load_script('tools/dataset_converters/nyuv2_superpixel.py')
    missing = tmp_path / 'nyu_depth_v2_labeled.mat'
    msg = _error(conv.main, [str(missing), str(tmp_path / 'out')])
    assert str(missing) in msg
    missing.write_text('MATLAB 5.0 MAT-file')
    msg = _error(conv.main, [str(missing), str(tmp_path / 'out')])
    assert f'{missing}: not an HDF5 file' in msg
    msg = _error(conv.main, [str(missing), str(tmp_path / 'out'), '--crop', '-1'])
    assert 'crop must be >= 0' in msg


def test_nyuv2_keeps_the_traceback_of_other_errors(load_script, tmp_path, monkeypatch):
    """Only the converter's own input errors become an error line: anything else (a bug)
    propagates with its traceback."""
    conv = load_script('tools/dataset_converters/nyuv2_superpixel.py')

    def bug(*args, **kwargs):
        raise ValueError('a bug, not a bad input')

    monkeypatch.setattr(conv, 'convert', bug)
    with pytest.raises(ValueError, match='a bug'):
        conv.main([str(tmp_path / 'x.mat'), str(tmp_path / 'out')])


def test_panoptic_to_instances_skip_bad_leaves_the_image_out(pan2inst, repo_root, tmp_path,
                                                               capsys):
    corpus = repo_root / 'tests/data/bad_coco/panoptic/annotations'
    pan_json, pngs = str(corpus / 'panoptic_val2017.json'), str(corpus / 'panoptic_val2017')
    out = tmp_path / 'out.json'
    msg = _error(pan2inst.main, [pan_json, pngs, str(out)])  # the default: stop, name it
    assert 'nopng.png: panoptic PNG of image 900007 not found' in msg
    pan2inst.main(['--skip-bad', pan_json, pngs, str(out)])
    err = capsys.readouterr().err
    assert err.count('warning: left out') == 1 and 'nopng.png' in err
    got = json.loads(out.read_text())
    assert 900007 not in {im['id'] for im in got['images']}
    assert 900007 not in {a['image_id'] for a in got['annotations']}
    # the other images: exactly what a conversion of the JSON without that image gives
    pan = json.loads((corpus / 'panoptic_val2017.json').read_text())
    pan['images'] = [im for im in pan['images'] if im['id'] != 900007]
    pan['annotations'] = [a for a in pan['annotations'] if a['image_id'] != 900007]
    rest = tmp_path / 'rest.json'
    rest.write_text(json.dumps(pan))
    assert pan2inst.convert(str(rest), pngs) == (got, [])
