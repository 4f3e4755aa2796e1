"""clustseg-superpixels: files, folders and globs -> 16-bit label PNGs (+ overlays),
resumable, unreadable files skipped and listed."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from clustseg.apis import inference_superpixel
from clustseg.apis.superpixel_api import load_superpixel_model
from clustseg.cli.superpixels import PNG_MAX_LABEL, collect_inputs, label_png, main, parse_args

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VAL = osp.join(ROOT, 'tests', 'data', 'bsds500', 'images', 'val')


@pytest.fixture()
def inputs(tmp_path):
    """tmp/in/{a,b}.jpg (BSDS val copies), tmp/in/sub/c.jpg, tmp/in/broken.jpg (truncated),
    tmp/in/notes.txt."""
    src = tmp_path / 'in'
    (src / 'sub').mkdir(parents=True)
    shutil.copy(osp.join(VAL, '103070.jpg'), src / 'a.jpg')
    shutil.copy(osp.join(VAL, '101085.jpg'), src / 'b.jpg')
    shutil.copy(osp.join(VAL, '105025.jpg'), src / 'sub' / 'c.jpg')
    data = open(osp.join(VAL, '108005.jpg'), 'rb').read()
    (src / 'broken.jpg').write_bytes(data[:len(data) // 3])
    (src / 'notes.txt').write_text('not an image')
    return src


def test_folder_run_overlay_resume_and_skips(inputs, tmp_path, capsys):
    out = tmp_path / 'out'
    argv = [str(inputs), str(inputs / 'missing.jpg'), '--out-dir', str(out), '--n-segments',
            '200', '--overlay', '--no-progress']
    assert main(argv) == 1  # some inputs skipped
    err = capsys.readouterr().err
    assert '2 written, 0 already done (kept), 2 skipped' in err
    assert f'skipped {inputs / "broken.jpg"}' in err and 'missing.jpg: no such file' in err
    assert sorted(os.listdir(out)) == ['a.png', 'a_overlay.png', 'b.png', 'b_overlay.png']
    model = load_superpixel_model('cpu')
    for name, src in (('a', '103070'), ('b', '101085')):
        png = cv2.imread(str(out / f'{name}.png'), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16
        ref = inference_superpixel(model, osp.join(VAL, f'{src}.jpg'), num_superpixels=200)
        np.testing.assert_array_equal(png, ref)
        overlay = cv2.imread(str(out / f'{name}_overlay.png'))
        assert overlay.shape == ref.shape + (3, )
        assert (overlay == (0, 255, 255)).all(-1).mean() > 0.05  # boundaries drawn
    # resumable: existing outputs are kept, not recomputed
    stamp = os.stat(out / 'a.png').st_mtime_ns
    assert main(argv) == 1
    assert '0 written, 2 already done (kept), 2 skipped' in capsys.readouterr().err
    assert os.stat(out / 'a.png').st_mtime_ns == stamp
    # an overlay asked for later is computed
    os.remove(out / 'b_overlay.png')
    assert main(argv) == 1
    assert '1 written, 1 already done' in capsys.readouterr().err


def test_other_settings_do_not_resume_old_outputs(inputs, tmp_path, capsys):
    out = tmp_path / 'out'
    both = [str(inputs / 'a.jpg'), str(inputs / 'b.jpg'), '--out-dir', str(out),
            '--no-progress']
    assert main(both + ['--n-segments', '200']) == 0
    capsys.readouterr()
    first = cv2.imread(str(out / 'a.png'), cv2.IMREAD_UNCHANGED)
    # another K into the same folder: an error naming the file and setting, nothing rewritten
    assert main(both + ['--n-segments', '400']) == 2
    err = capsys.readouterr().err
    assert 'a.png was made with other settings: n_segments 200 there, 400 now' in err
    assert '(and 1 more)' in err and '--overwrite' in err
    np.testing.assert_array_equal(cv2.imread(str(out / 'a.png'), cv2.IMREAD_UNCHANGED), first)
    assert main(both + ['--n-segments', '200', '--start-label', '1']) == 2
    assert 'start_label 0 there, 1 now' in capsys.readouterr().err
    # --overwrite of one image: that one has the new settings, the other keeps its own, and
    # a run over both with either K is refused instead of mixing them
    assert main([str(inputs / 'a.jpg'), '--out-dir', str(out), '--no-progress',
                 '--n-segments', '400', '--overwrite']) == 0
    second = cv2.imread(str(out / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert len(np.unique(second)) > len(np.unique(first)) + 100
    for k in ('200', '400'):
        assert main(both + ['--n-segments', k]) == 2
        assert 'made with other settings' in capsys.readouterr().err
    assert main(both + ['--n-segments', '400', '--overwrite']) == 0
    assert main(both + ['--n-segments', '400']) == 0
    assert '0 written, 2 already done (kept)' in capsys.readouterr().err
    # a label PNG without the record (another tool, an older version): unknown settings
    cv2.imwrite(str(out / 'a.png'), second.astype(np.uint16))
    assert main(both + ['--n-segments', '400']) == 2
    assert 'a.png exists but records no settings' in capsys.readouterr().err


def test_globs_recursive_and_console_script(inputs, tmp_path):
    jobs, missing = collect_inputs([str(inputs / '*.jpg'), str(inputs / 'nothing*.png')])
    assert [osp.basename(p) for p, _ in jobs] == ['a.jpg', 'b.jpg', 'broken.jpg']
    assert missing == [(str(inputs / 'nothing*.png'), 'pattern matches no file')]
    jobs, _ = collect_inputs([str(inputs)], recursive=True)
    assert [s for _, s in jobs] == ['a', 'b', 'broken', osp.join('sub', 'c')]
    (tmp_path / 'x').mkdir()
    shutil.copy(inputs / 'a.jpg', tmp_path / 'x' / 'a.jpg')
    with pytest.raises(ValueError, match='would both be written to a.png'):
        collect_inputs([str(inputs / 'a.jpg'), str(tmp_path / 'x' / 'a.jpg')])
    # with --overlay, a.jpg's overlay is a_overlay.jpg's label map: refused (it was
    # overwritten, and a rerun counted a.jpg as done)
    shutil.copy(inputs / 'b.jpg', tmp_path / 'x' / 'a_overlay.jpg')
    assert len(collect_inputs([str(tmp_path / 'x')])[0]) == 2
    with pytest.raises(ValueError, match=r'a\.jpg and .*a_overlay\.jpg would both be written '
                       r'to a_overlay\.png'):
        collect_inputs([str(tmp_path / 'x')], overlay=True)
    # the installed console script (setup.py entry_points), on one image of a subfolder
    exe = shutil.which('clustseg-superpixels', path=osp.dirname(sys.executable))
    assert exe, 'clustseg-superpixels is not installed: pip install -e . --no-deps'
    out = tmp_path / 'out2'
    res = subprocess.run([exe, str(inputs / 'sub'), '--out-dir', str(out), '--n-segments',
                          '100'], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert os.listdir(out) == ['c.png'] and '1 written' in res.stderr


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(['x.jpg', '--out-dir', str(tmp_path), '--n-segments', '0'])
    assert e.value.code == 2
    assert '--n-segments must be in 1..65536' in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # the count itself cannot fit: not --start-label's
        main(['x.jpg', '--out-dir', str(tmp_path), '--n-segments', '70000'])
    assert '--n-segments must be in 1..65536 (labels of a 16-bit PNG), got 70000' in \
        capsys.readouterr().err
    # labels start_label .. start_label + K - 1 must fit the 16-bit PNG: refused when parsing
    with pytest.raises(SystemExit) as e:
        main(['x.jpg', '--out-dir', str(tmp_path), '--n-segments', '600', '--start-label',
              '65000'])
    assert e.value.code == 2
    assert ('--start-label must be <= 64936 with --n-segments 600 (a 16-bit PNG holds labels '
            'up to 65535), got 65000') in capsys.readouterr().err


def test_out_dir_inside_an_input_folder_is_no_input(inputs, tmp_path, capsys):
    """--recursive with --out-dir in the input folder: a rerun neither reads the first run's
    outputs as images (sp/sp/...) nor stops on them."""
    os.remove(inputs / 'broken.jpg')
    os.remove(inputs / 'b.jpg')
    out = inputs / 'sp'
    argv = [str(inputs), '--recursive', '--out-dir', str(out), '--n-segments', '100',
            '--overlay', '--no-progress']
    assert main(argv) == 0
    assert '2 written, 0 already done' in capsys.readouterr().err
    assert main(argv) == 0
    assert '0 written, 2 already done (kept), 0 skipped' in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ['a.png', 'a_overlay.png', 'sub']
    assert sorted(os.listdir(out / 'sub')) == ['c.png', 'c_overlay.png']
    jobs, _ = collect_inputs([str(inputs)], recursive=True, out_dir=str(out))
    assert [s for _, s in jobs] == ['a', osp.join('sub', 'c')]


def test_out_dir_equal_to_the_input_folder(inputs, tmp_path, capsys):
    """--out-dir = the input folder: an input image that is an output path is refused with
    both named (not overwritten, even with --overwrite); the outputs written there are no
    inputs of a rerun, which resumes."""
    os.remove(inputs / 'broken.jpg')
    shutil.rmtree(inputs / 'sub')
    cv2.imwrite(str(inputs / 'b.png'), cv2.imread(str(inputs / 'b.jpg')))
    os.remove(inputs / 'b.jpg')
    photo = (inputs / 'b.png').read_bytes()
    argv = [str(inputs), '--out-dir', str(inputs), '--n-segments', '100', '--overlay',
            '--no-progress']
    for extra in ([], ['--overwrite']):
        assert main(argv + extra) == 2
        err = capsys.readouterr().err
        assert (f'the output {inputs / "b.png"} of {inputs / "b.png"} would overwrite that '
                'input image: give another --out-dir') in err
        assert (inputs / 'b.png').read_bytes() == photo
    os.remove(inputs / 'b.png')
    assert main(argv) == 0
    assert '1 written, 0 already done' in capsys.readouterr().err
    assert sorted(os.listdir(inputs)) == ['a.jpg', 'a.png', 'a_overlay.png', 'notes.txt']
    assert main(argv) == 0
    assert '0 written, 1 already done (kept), 0 skipped' in capsys.readouterr().err
    assert main(argv + ['--overwrite']) == 0
    assert '1 written, 0 already done' in capsys.readouterr().err
    # an explicit output file as the input: refused, not overwritten
    label = (inputs / 'a.png').read_bytes()
    assert main([str(inputs / 'a.png'), '--out-dir', str(inputs), '--overwrite',
                 '--no-progress']) == 2
    assert 'would overwrite that input image' in capsys.readouterr().err
    assert (inputs / 'a.png').read_bytes() == label
    # the connectivity step can leave more regions than K (116 for K = 100 here): that image
    # is skipped with the reason, not a traceback
    out = tmp_path / 'out'
    assert main([osp.join(VAL, '101085.jpg'), '--out-dir', str(out), '--n-segments', '100',
                 '--start-label', '65436', '--no-progress']) == 1
    err = capsys.readouterr().err
    assert ('labels up to 65551 (116 superpixels from --start-label 65436) do not fit a 16-bit '
            'PNG (up to 65535): give a smaller --start-label') in err
    assert not out.exists() or not os.listdir(out)


def test_folder_images_of_any_case_and_outdoor_next_to_out(tmp_path):
    """A folder's images are found whatever the case of their extension (cameras write
    .JPG); a subfolder whose name begins with the out dir's (``outdoor`` next to ``out``)
    is no output folder."""
    src = tmp_path / 'in'
    (src / 'outdoor').mkdir(parents=True)
    shutil.copy(osp.join(VAL, '103070.jpg'), src / 'A.JPG')
    shutil.copy(osp.join(VAL, '101085.jpg'), src / 'outdoor' / 'b.jpg')
    jobs, missing = collect_inputs([str(src)], recursive=True, out_dir=str(src / 'out'))
    assert [stem for _, stem in jobs] == ['A', osp.join('outdoor', 'b')] and not missing


def test_largest_16_bit_label(tmp_path):
    """Labels up to 65535 (PNG_MAX_LABEL) fit a label PNG, 65536 does not; --n-segments
    may be 65536 (labels 0..65535)."""
    png = tmp_path / 'l.png'
    png.write_bytes(label_png(np.array([[0, PNG_MAX_LABEL]])))
    assert cv2.imread(str(png), cv2.IMREAD_UNCHANGED).tolist() == [[0, PNG_MAX_LABEL]]
    with pytest.raises(ValueError, match=r'labels in \[0, 65536\] do not fit'):
        label_png(np.array([[0, PNG_MAX_LABEL + 1]]))
    assert parse_args(['x.jpg', '--out-dir', 'o', '--n-segments', '65536']).n_segments == 65536


def test_overwrite_of_an_image_now_unreadable_leaves_no_old_output(inputs, tmp_path, capsys):
    """--overwrite recomputes: an image that cannot be read any more is skipped, and its
    outputs of the earlier run are removed rather than left to look current."""
    out = tmp_path / 'out'
    argv = [str(inputs / 'a.jpg'), '--out-dir', str(out), '--n-segments', '100', '--overlay',
            '--no-progress']
    assert main(argv) == 0 and sorted(os.listdir(out)) == ['a.png', 'a_overlay.png']
    shutil.copy(inputs / 'broken.jpg', inputs / 'a.jpg')
    assert main(argv + ['--overwrite']) == 1
    assert '0 written, 0 already done (kept), 1 skipped' in capsys.readouterr().err
    assert os.listdir(out) == []
