"""tools/analysis_tools/gpu_benchmark.sh / .py: the one-shot GPU comparison, run here on the
CPU at a tiny size with the compact configs (the same script a GPU session runs)."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / 'tools' / 'analysis_tools'
COMPACT = ['--panoptic', 'configs/panoptic/clustseg_compact_embedded.py',
           '--reference', 'configs/reference/mask2former_compact_embedded_panoptic.py',
           '--semantic', 'configs/semantic/clustseg_compact_embedded_ade20k.py',
           '--instance', 'configs/instance/clustseg_compact_embedded.py']
TINY = ['--device', 'cpu', '--threads', '1', '--infer-size', '160', '160', '--train-size', '160',
        '--sem-infer-size', '160', '160', '--sem-train-size', '160', '--batch', '1',
        '--infer-warmup', '0', '--infer-iters', '1', '--train-warmup', '0', '--train-iters', '1']


def _load(name):
    spec = importlib.util.spec_from_file_location(f'{name}_tool', TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gb = _load('gpu_benchmark')


def _cells(argv):
    args = gb.build_parser().parse_args(argv)
    args.msda_resolved = 'pytorch'
    return gb.make_cells(args)


def test_cells_default_gpu_plan():
    """The R50 configs, 800 x 1333 inference / 1024^2 batch-2 training, main comparison first,
    Mask2Former's bf16 inference last of the panoptic cells."""
    cells = _cells(['--device', 'cuda'])
    keys = [(c['task'], c['model'], c['phase'], c['precision']) for c in cells]
    assert keys[:8] == [('panoptic', 'ClustSeg-R50 T=3', 'infer', 'fp32'),
                        ('panoptic', 'Mask2Former-R50', 'infer', 'fp32'),
                        ('panoptic', 'ClustSeg-R50 T=3', 'train', 'fp32'),
                        ('panoptic', 'Mask2Former-R50', 'train', 'fp32'),
                        ('panoptic', 'ClustSeg-R50 T=1', 'train', 'fp32'),
                        ('panoptic', 'ClustSeg-R50 T=3 inner points', 'train', 'fp32'),
                        ('panoptic', 'ClustSeg-R50 T=3 inner maps', 'train', 'fp32'),
                        ('panoptic', 'ClustSeg-R50 T=1', 'infer', 'fp32')]
    panoptic = [k for k in keys if k[0] == 'panoptic' and k[2] == 'infer']
    assert panoptic[-1] == ('panoptic', 'Mask2Former-R50', 'infer', 'bf16')
    # right after the fp32 cells: both models with the network replayed from a CUDA graph
    assert keys[8:10] == [('panoptic', 'ClustSeg-R50 T=3', 'infer', 'fp32 + CUDA graph'),
                         ('panoptic', 'Mask2Former-R50', 'infer', 'fp32 + CUDA graph')]
    graphed = [c['job'] for c in cells if c['job'].get('cuda_graph')]
    assert len(graphed) == 2 and all(j['amp'] == 'none' and not j['count_ops'] for j in graphed)
    assert not any(c['job'].get('cuda_graph') for c in _cells(['--device', 'cpu']))
    assert ('panoptic', 'Mask2Former-R50', 'infer', 'fp16') in keys
    assert ('panoptic', 'ClustSeg-R50 T=3', 'infer', 'bf16') in keys
    for task in ('semantic', 'instance'):
        assert (task, 'ClustSeg-R50', 'train', 'fp32') in keys
        assert (task, 'ClustSeg-R50', 'infer', 'bf16') in keys
    assert len(set(keys)) == len(keys)
    by_key = {(c['task'], c['model'], c['phase'], c['precision']): c for c in cells}
    t3 = by_key[('panoptic', 'ClustSeg-R50 T=3', 'train', 'fp32')]['job']
    assert t3['train_size'] == 1024 and t3['batch'] == 2 and t3['amp'] == 'none'
    # both panoptic models infer with the panoptic post-processing only
    pan = {'model.test_cfg.instance_on': False}
    assert t3['spec']['config'] == gb.PANOPTIC and t3['spec']['options'] == pan
    m2f = by_key[('panoptic', 'Mask2Former-R50', 'infer', 'fp32')]['job']
    assert m2f['spec']['options'] == pan and m2f['count_ops']
    t1 = by_key[('panoptic', 'ClustSeg-R50 T=1', 'infer', 'fp32')]['job']
    assert t1['infer_size'] == [800, 1333] and t1['count_ops']
    assert t1['spec']['options'] == {'model.panoptic_head.decoder.num_iters': 1, **pan}
    inner = by_key[('panoptic', 'ClustSeg-R50 T=3 inner points', 'train', 'fp32')]['job']
    sup = 'model.panoptic_head.deep_supervision.type'
    assert inner['spec']['options'] == {sup: 'InnerEStepPoints', **pan}
    maps = by_key[('panoptic', 'ClustSeg-R50 T=3 inner maps', 'train', 'fp32')]['job']
    assert maps['spec']['options'] == {sup: 'InnerEStepMaps', **pan}
    # the configs' own test_cfg on request
    plain = {(c['model'], c['phase'], c['precision']): c['job'] for c in
             _cells(['--device', 'cuda', '--panoptic-test-options'])}
    assert plain[('Mask2Former-R50', 'infer', 'fp32')]['spec']['options'] == {}
    sem = by_key[('semantic', 'ClustSeg-R50', 'infer', 'fp32')]['job']
    assert sem['infer_size'] == [640, 640] and sem['spec']['config'] == gb.SEMANTIC
    # every config exists and every option key is in its config
    for c in cells:
        gb.bench.load_config(c['job']['spec'], {})
    assert len(_cells(['--device', 'cuda', '--no-extras', '--semantic', ''])) < len(cells)


def test_ratios_and_markdown_from_results():
    cells = [dict(c, input=gb._input(c)) for c in _cells(['--device', 'cuda', '--no-extras'])]
    fake = {('ClustSeg-R50 T=3', 'infer', 'fp32'): dict(ms_per_img=50.0, img_per_s=20.0),
            ('ClustSeg-R50 T=3', 'infer', 'bf16'): dict(ms_per_img=25.0, img_per_s=40.0,
                                                        post_instances=75.0,
                                                        post_nonempty_instances=3.0,
                                                        post_segments=2.5),
            ('Mask2Former-R50', 'infer', 'fp32'): dict(ms_per_img=100.0, img_per_s=10.0),
            ('Mask2Former-R50', 'infer', 'fp16'): dict(ms_per_img=40.0, img_per_s=25.0),
            ('ClustSeg-R50 T=3', 'train', 'fp32'): dict(s_per_iter=0.6, peak_mem_mb=900.0),
            ('Mask2Former-R50', 'train', 'fp32'): dict(s_per_iter=1.0, peak_mem_mb=1000.0),
            ('ClustSeg-R50 T=1', 'train', 'fp32'): dict(s_per_iter=0.4, peak_mem_mb=800.0),
            ('ClustSeg-R50 T=3 inner points', 'train', 'fp32'): dict(s_per_iter=0.46,
                                                                   peak_mem_mb=850.0),
            ('ClustSeg-R50 T=3 inner maps', 'train', 'fp32'): dict(s_per_iter=0.52,
                                                                 peak_mem_mb=820.0)}
    for c in cells:
        res = fake.get((c['model'], c['phase'], c['precision'])) if c['task'] == 'panoptic' \
            else None
        c['result'] = dict(res or dict(error='RuntimeError: no bf16 kernel'), phase=c['phase'])
    ratios = gb.compute_ratios(cells)
    assert ratios['infer_fp32_throughput']['value'] == pytest.approx(2.0)
    assert ratios['infer_fp32_throughput']['reached'] is True
    assert ratios['infer_best_throughput']['value'] == pytest.approx(40 / 25)
    assert 'ClustSeg T=3 bf16, Mask2Former fp16' in ratios['infer_best_throughput']['detail']
    assert ratios['train_step_time']['value'] == pytest.approx(0.6)
    assert ratios['train_peak_memory']['reached'] is True
    assert ratios['t3_over_t1_train_step']['value'] == pytest.approx(1.5)
    assert ratios['t3_over_t1_train_step']['reached'] is False
    assert ratios['t3_inner_points_over_t1_train_step']['value'] == pytest.approx(1.15)
    assert ratios['t3_inner_points_over_t1_train_step']['reached'] is True
    assert ratios['t3_inner_maps_over_t1_train_step']['value'] == pytest.approx(1.3)
    assert ratios['t3_inner_maps_over_t1_train_step']['reached'] is False
    md = gb.format_markdown(dict(meta=dict(
        device_name='GPU', date='d', code='c', torch='t', device='cuda', mem_kind='m',
        msda='kernel', infer_warmup=1, infer_iters=2, train_warmup=1, train_iters=2,
        elapsed_s=1.0, panoptic_test_options={'model.test_cfg.instance_on': False}),
        cells=cells, ratios=ratios))
    assert '| panoptic models: model.test_cfg.instance_on=False |' in md
    assert '- panoptic ClustSeg-R50 T=3 bf16: instances 75.0, nonempty instances 3.0, ' \
        'segments 2.5' in md
    assert '| panoptic | ClustSeg-R50 T=3 | infer | bf16 | 1 x 800x1333 | 25.0 | 40.00 | n/a |' \
        in md
    assert '| panoptic | ClustSeg-R50 T=3 | train | fp32 | 2 x 1024x1024 | 0.600 |' in md
    assert '| s/step ClustSeg T=3 / T=1, fp32 | 1.50 | <= 1.2 | no |' in md
    assert '- panoptic / Mask2Former-R50 / infer / bf16: RuntimeError: no bf16 kernel' in md


def test_run_jobs_budget_kills_the_running_job_and_skips_the_rest():
    job = dict(device='cpu', infer_size=[160, 160], train_size=160, batch=1, warmup=0,
               iters=1, amp='none', seed=0, threads=1, global_options={}, msda='pytorch',
               spec=dict(label='x', config=COMPACT[1], options={}), phase='infer')
    results = gb.bench.run_jobs([job, dict(job, phase='train')], timeout=0.05)
    assert results[0]['error'].startswith('timed out') and results[1]['skipped']


def test_gpu_benchmark_script_on_cpu(tmp_path):
    """The shell script end to end on the CPU (compact configs, 160 px, one iteration, the
    cells in one process): every cell measured, one JSON and one markdown table in $OUT. In
    the default suite (about 25 s): the script is run only when a GPU is lent, so it must not
    break unseen (a slow-marked end-to-end test of the held-out runner did)."""
    env = dict(os.environ, OUT=str(tmp_path), PYTHON=sys.executable, GPU_BENCH_INSTALL='0',
               OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', str(TOOLS / 'gpu_benchmark.sh'), *TINY, *COMPACT, '--amp-dtypes', 'bf16',
         '--isolate', 'shared', '--semantic-reference', '', '--instance-reference', '',
         '--no-extras', '--budget-s', '240'],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / 'gpu_benchmark.json').read_text())
    md = (tmp_path / 'gpu_benchmark.md').read_text()
    assert results['meta']['device'] == 'cpu' and results['meta']['isolate'] == 'shared'
    cells = results['cells']
    assert len(cells) == 17
    for cell in cells:
        res = cell['result']
        assert 'error' not in res, cell
        value = res['ms_per_img'] if cell['phase'] == 'infer' else res['s_per_iter']
        assert math.isfinite(value) and value > 0, cell
        assert f"| {cell['task']} | {cell['model']} | {cell['phase']} | " \
            f"{cell['precision']} | {cell['input']} |" in md
    assert cells[0]['result']['peak_mem_mb'] > 0  # the first job of the CPU process
    assert {c['task'] for c in cells} == {'panoptic', 'semantic', 'instance'}
    assert sorted(results['ratios']) == sorted(gb.TARGETS)
    for name in ('infer_fp32_throughput', 'infer_best_throughput', 'train_step_time',
                 't3_over_t1_train_step', 't3_inner_points_over_t1_train_step',
                 't3_inner_maps_over_t1_train_step'):
        assert results['ratios'][name]['value'] > 0, name
    assert '| ratio (panoptic) | value | target | reached |' in md
    # the fp32 panoptic and instance training cells also count their operators per step, the
    # fp32 panoptic inference cells per image
    counted = [c for c in cells if 'ops' in c['result']]
    assert {(c['task'], c['phase'], c['precision']) for c in counted} == \
        {('panoptic', 'train', 'fp32'), ('instance', 'train', 'fp32'),
         ('panoptic', 'infer', 'fp32')} and len(counted) >= 7
    assert all(f"- {c['task']} {c['model']}: {c['result']['ops']} (" in md for c in counted)
    assert 'Operators per inference image' in md
    # what the post-processing did, per inference cell: panoptic only for the panoptic models
    for c in cells:
        res = c['result']
        if c['phase'] == 'infer' and c['task'] == 'panoptic':
            assert 'post_segments' in res and 'post_instances' not in res, c
        elif c['phase'] == 'infer' and c['task'] == 'instance':
            assert res['post_instances'] >= res['post_nonempty_instances'] >= 0, c
    assert 'Post-processing per image' in md
    assert '[clustseg_compact_embedded]' in md
    assert proc.stdout.strip().endswith(md.strip().splitlines()[-1])
