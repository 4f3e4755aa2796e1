"""tools/analysis_tools/superpixel_step_memory.py on the compact config and real BSDS images."""
import importlib.util

ROOT = __import__('pathlib').Path(__file__).resolve().parents[2]


def _tool():
    spec = importlib.util.spec_from_file_location(
        'superpixel_step_memory', ROOT / 'tools/analysis_tools/superpixel_step_memory.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reports_one_training_step(tmp_path):
    out = tmp_path / 'mem.json'
    res = _tool().main([str(ROOT / 'configs/superpixel/clustseg_compact_embedded.py'),
                        '--batch', '2', '--num-superpixels', '40',
                        '--data-root', str(ROOT / 'tests/data/bsds500'), '--out', str(out)])
    assert out.exists()
    assert res['batch'] == 2 and res['input_shape'][0] == 2
    assert res['peak_rss_mb'] >= res['rss_before_step_mb'] > 0
    assert res['step_s'] > 0 and res['params_m'] > 0


def test_data_root_reaches_each_dataset_of_the_paper_config():
    """The paper config trains on a concatenation of BSDS500 train and val: --data-root must
    reach both (it was set on the ConcatDataset itself, a TypeError when built)."""
    from mmengine.config import Config
    tool = _tool()
    cfg = Config.fromfile(ROOT / 'configs/superpixel/clustseg_r50_8xb16-300k_bsds500-superpixel.py')
    ds_cfg = cfg.train_dataloader.dataset
    assert ds_cfg.type == 'SeededConcatDataset'
    tool.set_data_root(ds_cfg, 'tests/data/bsds500')
    assert 'data_root' not in ds_cfg
    assert [d.data_root for d in ds_cfg.datasets] == ['tests/data/bsds500'] * 2
    import clustseg  # noqa: F401
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    ds_cfg.datasets = [dict(d, data_root=str(ROOT / 'tests/data/bsds500')) for d in ds_cfg.datasets]
    ds = DATASETS.build(ds_cfg)
    assert len(ds) == sum(len(DATASETS.build(d)) for d in ds_cfg.datasets) > 0
