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
