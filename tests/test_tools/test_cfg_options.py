"""--cfg-options that mmengine cannot merge stop tools/train.py, tools/test.py and init_model
with an error naming the option and the config, not a TypeError naming neither."""
import subprocess
import sys

import pytest
from mmengine.config import Config

from clustseg.utils import ConfigOptionError, merge_cfg_options

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
PANOPTIC = 'configs/panoptic/clustseg_compact_embedded.py'


def test_an_option_into_a_list_by_name_names_the_indexed_key():
    cfg = Config.fromfile(str(ROOT / PANOPTIC))
    with pytest.raises(ConfigOptionError, match=r"--cfg-options test_evaluator\.outfile_prefix="
                       r"'o' does not fit x\.py: test_evaluator is a list of 3: index it, e\.g\. "
                       r'test_evaluator\.0\.outfile_prefix'):
        merge_cfg_options(cfg, {'train_cfg.max_iters': 5,
                                'test_evaluator.outfile_prefix': 'o'}, 'x.py')
    with pytest.raises(ConfigOptionError, match=r'--cfg-options train_cfg\.max_iters\.x=3 does '
                       r'not fit .*max_iters'):
        merge_cfg_options(cfg, {'train_cfg.max_iters.x': 3})
    merge_cfg_options(cfg, {'test_evaluator.0.outfile_prefix': 'o', 'train_cfg.max_iters': 5})
    assert cfg.test_evaluator[0].outfile_prefix == 'o' and cfg.train_cfg.max_iters == 5


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_tools_name_the_option(tool, tmp_path):
    ckpt = ROOT / 'checkpoints/heldout/clustseg_compact_1xb8-1k_camvid-panoptic-240x180.pth'
    args = [PANOPTIC] if tool == 'train' else [PANOPTIC, str(ckpt)]
    done = subprocess.run([sys.executable, f'tools/{tool}.py', *args, '--work-dir',
                           str(tmp_path), '--cfg-options', 'test_evaluator.outfile_prefix=o'],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and 'Traceback' not in done.stderr, done.stderr[-2000:]
    assert 'error: --cfg-options test_evaluator.outfile_prefix=' in done.stderr
    assert 'test_evaluator.0.outfile_prefix' in done.stderr
