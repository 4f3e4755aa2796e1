"""COCO test-dev (the paper's Table 2 split): the ``*_coco_test-dev.py`` configs change only the
test split of their paper config, and ``tools/test.py`` on an image-info file (images, no
annotations) writes the same predictions, in COCO's results format, as on the annotated
split."""
import json
import os
import subprocess
import sys

import pytest
from mmengine.config import Config

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]
BACKBONES = ('r50', 'r101', 'swin-b', 'convnext-b')
BASE = ROOT / 'configs/_base_/datasets/coco_instance_test-dev.py'
CKPT = ROOT / 'checkpoints/heldout/clustseg_compact_1xb8-1k_coco128-320.pth'
COMPACT = ROOT / 'configs/instance/clustseg_compact_1xb8-1k_coco128-320.py'
#: the helper variables of the test-dev base file, not config entries of their own
HELPERS = set(Config.fromfile(str(BASE)).keys())


def _plain(cfg, drop=()):
    return {k: v for k, v in cfg.to_dict().items() if k not in drop and k not in HELPERS}


@pytest.mark.parametrize('backbone', BACKBONES)
def test_test_dev_config_changes_only_the_test_split(backbone):
    stem = f'clustseg_{backbone}_8xb2-lsj-50e_coco'
    parent = Config.fromfile(str(ROOT / f'configs/instance/{stem}.py'))
    cfg = Config.fromfile(str(ROOT / f'configs/instance/{stem}_test-dev.py'))
    test_parts = ('test_dataloader', 'test_evaluator')
    assert _plain(cfg, test_parts) == _plain(parent, test_parts)  # model, training, val
    data = cfg.test_dataloader.dataset
    assert data.ann_file == 'annotations/image_info_test-dev2017.json'
    assert data.data_prefix == dict(img='test2017/')
    assert data.pipeline == parent.test_dataloader.dataset.pipeline
    # the metric reads the same file, under the dataset's root, and only writes the results
    ev = cfg.test_evaluator
    assert ev.ann_file == data.data_root + data.ann_file
    assert ev.format_only is True and ev.type == parent.test_evaluator.type
    assert ev.outfile_prefix.startswith(f'work_dirs/{stem}_test-dev/')
    assert cfg.val_evaluator.format_only is False


def _test(config, out_json, *opts):
    cmd = [sys.executable, 'tools/test.py', str(config), str(CKPT), '--work-dir',
           str(out_json.parent / 'work'), '--out', str(out_json), '--cfg-options', *opts]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out_json.read_text())


def _sorted(path):
    return sorted(json.loads(path.read_text()),
                  key=lambda d: (d['image_id'], -d['score'], d['category_id'], str(d['bbox'])))


def test_test_dev_split_writes_the_predictions_of_the_annotated_split(heldout_scoring_data,
                                                                      tmp_path):
    """The compact coco128 model (shipped checkpoint) on its 3 committed held-out images:
    once on the annotated split (scored, results also written), once as a test-dev split
    built as COCO ships it (the image-info file: images and categories, no annotations; the
    images under test2017/), through the test-dev base file as the shipped configs use it."""
    src = heldout_scoring_data / 'data/coco128'
    coco = tmp_path / 'coco'
    (coco / 'annotations').mkdir(parents=True)
    os.symlink(src / 'images', coco / 'test2017')
    annotated = json.loads((src / 'annotations/instances_test.json').read_text())
    info = {k: v for k, v in annotated.items() if k != 'annotations'}
    (coco / 'annotations/image_info_test-dev2017.json').write_text(json.dumps(info))
    assert annotated['annotations']  # the annotated run has ground truth to score

    metrics = _test(COMPACT, tmp_path / 'scored.json',
                    f'test_dataloader.dataset.data_root={src}/',
                    f'test_evaluator.ann_file={src}/annotations/instances_test.json',
                    f'test_evaluator.outfile_prefix={tmp_path}/scored')
    assert 'coco/segm_mAP' in metrics

    config = tmp_path / 'compact_coco_test-dev.py'
    config.write_text(
        f"_base_ = ['{COMPACT}', '{BASE}']\n"
        'test_dataloader = dict(dataset={{_base_.test_dev_dataset}})\n'
        'test_evaluator = dict(format_only=True, ann_file={{_base_.test_dev_ann_path}}, '
        "outfile_prefix='{{fileDirname}}/test-dev/detections')\n")
    metrics = _test(config, tmp_path / 'format_only.json',
                    f'test_dataloader.dataset.data_root={coco}/',
                    f'test_evaluator.ann_file={coco}/annotations/image_info_test-dev2017.json')
    assert metrics == {}  # nothing scored

    for kind in ('segm', 'bbox'):
        written = tmp_path / f'test-dev/detections.{kind}.json'
        results = _sorted(written)
        assert results == _sorted(tmp_path / f'scored.{kind}.json'), kind
        # every image, at most 100 detections each (the server's limit), COCO category ids
        per_image = {}
        for r in results:
            per_image[r['image_id']] = per_image.get(r['image_id'], 0) + 1
        assert set(per_image) == {im['id'] for im in info['images']}
        assert max(per_image.values()) <= 100
        assert {r['category_id'] for r in results} <= {c['id'] for c in info['categories']}
