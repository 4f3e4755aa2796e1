"""The semantic data of tests/data: COCO-Stuff label maps converted to mmseg's 171 train ids
exactly as mmseg's converter maps them, loaded by mmseg's COCOStuffDataset and ADE20KDataset
through the embedded configs."""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from PIL import Image

from clustseg.registry import DATASETS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tools' / 'dataset_converters'))
import coco_stuff164k  # noqa: E402

COCO_STUFF = ROOT / 'tests' / 'data' / 'coco_stuff'


def test_mapping_keeps_the_171_used_ids_in_order():
    lut = coco_stuff164k.LUT
    used = np.flatnonzero(lut != 255)
    assert len(used) == 171 and lut[used].tolist() == list(range(171))
    assert lut[255] == 255 and lut[11] == 255 and lut[90] == 255  # unused COCO ids 12, 91
    assert lut[10] == 10 and lut[12] == 11 and lut[91] == 80 and lut[181] == 170


def test_mapping_equals_mmseg_converter_table():
    import mmseg
    path = Path(mmseg.__file__).parent / '.mim' / 'tools' / 'dataset_converters' / \
        'coco_stuff164k.py'
    if not path.is_file():
        pytest.skip('mmseg installed without its tools (.mim)')
    spec = importlib.util.spec_from_file_location('mmseg_coco_stuff164k', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ref = np.full(256, 255, dtype=np.uint8)
    for raw, train in mod.clsID_to_trID.items():
        ref[raw] = train
    assert np.array_equal(ref, coco_stuff164k.LUT)


def test_committed_train_id_maps_equal_a_fresh_conversion():
    raw = coco_stuff164k.raw_label_files(str(COCO_STUFF))
    assert len(raw) == 21
    classes = set()
    for path in raw:
        ids = np.array(Image.open(path))
        conv = np.array(Image.open(path[:-4] + coco_stuff164k.SUFFIX))
        assert np.array_equal(conv, coco_stuff164k.convert_map(ids)), path
        labelled = ids != 255
        assert np.array_equal(conv != 255, labelled & (coco_stuff164k.LUT[ids] != 255))
        classes |= set(np.unique(conv).tolist()) - {255}
    assert len(classes) == 87  # as the data README says


def test_convert_file_writes_the_mmseg_suffix(tmp_path):
    ids = np.array([[0, 11, 12], [91, 181, 255]], dtype=np.uint8)
    src = tmp_path / 'x.png'
    Image.fromarray(ids).save(src)
    out = coco_stuff164k.convert_file(str(src))
    assert out.endswith('x_labelTrainIds.png')
    assert np.array(Image.open(out)).tolist() == [[0, 255, 11], [80, 170, 255]]
    with pytest.raises(ValueError):
        coco_stuff164k.convert_map(ids.astype(np.int32))


@pytest.mark.parametrize('name,splits', [
    ('clustseg_compact_embedded.py', {'train_dataloader': 13, 'val_dataloader': 8}),
    ('clustseg_compact_embedded_ade20k.py', {'train_dataloader': 3, 'val_dataloader': 3})])
def test_embedded_datasets_load(name, splits):
    cfg = Config.fromfile(str(ROOT / 'configs' / 'semantic' / name))
    with DefaultScope.overwrite_default_scope('mmseg'):
        for key, n in splits.items():
            ds = DATASETS.build(cfg[key].dataset)
            assert len(ds) == n
            sample = ds[0]['data_samples']
            gt = sample.gt_sem_seg.data
            ok = (gt == 255) | ((gt >= 0) & (gt < len(ds.metainfo['classes'])))
            assert bool(ok.all()) and bool((gt != 255).any())
