"""tools/analysis_tools/benchmark.py: real data, real timings, clear errors, and the reference
Mask2Former config kept on the compact ClustSeg's data and schedule."""
import importlib.util
import json
import math
from pathlib import Path

import pytest
from mmengine.config import Config

ROOT = Path(__file__).resolve().parents[2]
CLUSTSEG = 'configs/panoptic/clustseg_compact_embedded.py'
M2F = 'configs/reference/mask2former_compact_embedded_panoptic.py'
SIZE = 160  # ClustSeg's 75 thing centers need >= 75 pixels at stride 16


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', ROOT / 'tools' / 'analysis_tools' / 'benchmark.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_tool()


def _job(config, phase, options=None, **kw):
    job = dict(device='cpu', infer_size=[SIZE, SIZE], train_size=SIZE, batch=1, warmup=0,
               iters=1, amp='none', seed=0, threads=None, global_options={},
               spec=dict(label='x', config=config, options=options or {}), phase=phase)
    job.update(kw)
    return job


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_parse_variant_and_options():
    v = bench.parse_variant('T1=configs/a.py,model.panoptic_head.decoder.num_iters=1,'
                            'model.x=[1,2],model.y=None')
    assert v == dict(label='T1', config='configs/a.py',
                     options={'model.panoptic_head.decoder.num_iters': 1, 'model.x': [1, 2],
                              'model.y': None})
    alias = bench.parse_variant('M2F=mmdet::mask2former/m.py')
    assert alias['config'] == 'mmdet::mask2former/m.py' and alias['options'] == {}
    with pytest.raises(bench.BenchmarkError, match='LABEL=CONFIG'):
        bench.parse_variant('configs/a.py')


def test_load_config_applies_existing_keys_and_drops_pretrained():
    cfg = bench.load_config(dict(label='T1', config=CLUSTSEG,
                                 options={'model.panoptic_head.decoder.num_iters': 1}), {})
    assert cfg.model.panoptic_head.decoder.num_iters == 1
    m2f = bench.load_config(
        dict(label='m', config='mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
             options={}), {})
    assert m2f.model.backbone.init_cfg is None  # mmdet names torchvision://resnet50
    task = bench.make_task(m2f)
    assert task.kind == 'panoptic'
    assert task.prepare_model_cfg(256) == ['BatchFixedSizePad size -> 256']
    assert m2f.model.data_preprocessor.batch_augments[0]['size'] == (256, 256)


def test_unknown_key_and_missing_config_are_clear_errors(capsys):
    with pytest.raises(SystemExit, match=r"unknown config key 'model.panoptic_head.nope'"):
        bench.main([CLUSTSEG, '--cfg-options', 'model.panoptic_head.nope=1'])
    # a new argument is known only beside the ``type`` it belongs to
    sup = 'model.panoptic_head.deep_supervision'
    with pytest.raises(SystemExit, match=f"unknown config key '{sup}.num_points'"):
        bench.main([CLUSTSEG, '--cfg-options', f'{sup}.num_points=64'])
    cfg = bench.load_config(dict(label='p', config=CLUSTSEG, options={
        f'{sup}.type': 'InnerEStepPoints', f'{sup}.num_points': 64}), {})
    assert cfg.model.panoptic_head.deep_supervision == dict(type='InnerEStepPoints',
                                                            num_points=64)
    # a per-variant key that only one of the configs has
    with pytest.raises(SystemExit, match=r"unknown config key .*decoder.num_iters.* has no "
                                         r"'decoder'"):
        bench.main(['--variant', f'm={M2F},model.panoptic_head.decoder.num_iters=1'])
    with pytest.raises(SystemExit, match='config file not found: configs/nope.py'):
        bench.main(['configs/nope.py'])
    with pytest.raises(SystemExit):  # duplicate labels
        bench.main([CLUSTSEG, CLUSTSEG])
    assert 'labels must be unique' in capsys.readouterr().err


@pytest.mark.parametrize('config', [
    'configs/semantic/clustseg_compact_1xb8-1k_camvid-240x180.py',
    'configs/panoptic/clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py'])
def test_config_without_embedded_samples_is_named(config):
    """CamVid's configs: the benchmark's real samples are COCO's / ADE20K's / COCO-Stuff's, so
    a clear error instead of an empty dataset or a category mismatch."""
    cfg = bench.load_config(dict(label='c', config=config, options={}), {})
    with pytest.raises(bench.BenchmarkError, match=r'camvid.*embedded real samples of ade20k, '
                       r'coco_stuff, instance, panoptic .*(none of them|its own classes)'):
        bench.make_task(cfg)


def test_worker_trains_on_real_ground_truth(capsys):
    """One training step of the compact ClustSeg in-process: real GT, finite loss, numbers."""
    res = bench.run_worker(_job(CLUSTSEG, 'train', batch=2, count_ops=True))
    assert res['optimizer'] == 'AdamW' and res['optim_wrapper'] == 'OptimWrapper'
    # --count-ops: one more step under the operator counter; the loss selections (nonzero,
    # boolean indexing) are among them
    assert res['ops'] > 1000 and 0 < res['data_dependent_ops'] < res['ops']
    assert 0 < res['view_ops'] < res['ops'] and dict(res['top']).get('aten::view', 0) <= \
        res['view_ops']
    assert len(res['top']) == 15 and res['top'][0][1] >= res['top'][-1][1]
    assert math.isfinite(res['last_loss']) and res['last_loss'] > 0
    for key in ('s_per_iter', 'peak_mem_mb', 'params_m', 'img_per_s'):
        assert _positive(res[key]), (key, res)


def test_gpu_code_paths_count_what_a_gpu_dispatches():
    """--gpu-code-paths: the CPU takes the CUDA entries of the head's per-device choices for
    the run (a decoder level's E-steps stacked, all E-steps matched at once), so the counted
    training step dispatches fewer operators and fewer host reads; the choices are restored."""
    import clustseg.models.heads.clustseg_head as head
    before = (dict(head.STACK_E_STEPS), dict(head.MATCH_CHUNK_ELEMENTS))
    cpu = bench.run_worker(_job(CLUSTSEG, 'train', batch=2, count_ops=True))
    gpu = bench.run_worker(_job(CLUSTSEG, 'train', batch=2, count_ops=True,
                                gpu_code_paths=True))
    assert (dict(head.STACK_E_STEPS), dict(head.MATCH_CHUNK_ELEMENTS)) == before
    assert gpu['ops'] < cpu['ops'] and gpu['data_dependent_ops'] < cpu['data_dependent_ops']
    assert gpu['last_loss'] == pytest.approx(cpu['last_loss'], rel=1e-3)  # fp32 round-off
    with pytest.raises(SystemExit):
        bench.parse_args([CLUSTSEG, '--device', 'cuda', '--gpu-code-paths'])


def test_inference_records_the_post_processing_load():
    """An inference cell says what mmdet's fusion head produced per image (with random weights
    the draw, not the method, decides it): instances and the non-empty ones only with the
    instance post-processing on; panoptic segments (void excluded); operators per image."""
    on = bench.run_worker(_job(CLUSTSEG, 'infer', count_ops=True))
    off = bench.run_worker(_job(CLUSTSEG, 'infer', {'model.test_cfg.instance_on': False},
                                count_ops=True))
    assert 0 <= on['post_nonempty_instances'] <= on['post_instances'] and \
        on['post_instances'] > 0
    assert 'post_instances' not in off and 'post_nonempty_instances' not in off
    for res in (on, off):
        assert res['post_segments'] >= 0 and _positive(res['ms_per_img'])
    # the instance post-processing is operators (and host reads on a GPU) per image
    assert off['ops'] < on['ops']


def test_post_processing_load_counts():
    import torch
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData, PixelData
    s = DetDataSample()
    masks = torch.zeros(3, 4, 4, dtype=torch.bool)
    masks[0, 1, 1] = masks[2, 0, 0] = True
    s.pred_instances = InstanceData(masks=masks, scores=torch.ones(3))
    # 5 = void (num_classes); ids 0 and 1000 are two segments
    s.pred_panoptic_seg = PixelData(sem_seg=torch.tensor([[[5, 0], [1000, 5]]]))
    empty = DetDataSample()
    empty.pred_instances = InstanceData(masks=torch.zeros(0, 4, 4, dtype=torch.bool))
    empty.pred_panoptic_seg = PixelData(sem_seg=torch.full((1, 2, 2), 5))
    assert bench.post_processing_load([s, empty], void=5) == dict(
        post_instances=1.5, post_nonempty_instances=1.0, post_segments=1.0)
    assert bench.post_processing_load([DetDataSample()]) == {}


def test_profile_tables_time_by_stage_and_loss_function(tmp_path):
    """--profile: the timed step also runs under torch.profiler; the table names the model's
    stages and the head's loss functions with their calls per iteration (the compact model
    supervises 9 E-steps: one matching of all, 18 loss evaluations with the recomputation)."""
    res = bench.run_worker(_job(CLUSTSEG, 'train', batch=1, iters=1,
                                spec=dict(label='C S', config=CLUSTSEG, options={}),
                                profile=str(tmp_path)))
    assert _positive(res['s_per_iter'])
    text = (tmp_path / 'C_S_train.txt').read_text()
    cells = [line.strip('| ').split(' | ') for line in text.splitlines()
             if line.startswith('| ')]
    rows = {c[0]: c[1:] for c in cells}
    for scope in ('stage:backbone', 'stage:panoptic_head.core.decoder',
                  'loss:ClustSegPanopticHead.loss_by_feat'):
        assert scope in rows, scope
    assert rows['loss:ClustSegPanopticHead._assign_steps'][0] == '1'  # all E-steps at once
    assert rows['loss:ClustSegPanopticHead._step_losses'][0] == '18'
    assert 0 < float(rows['loss:ClustSegPanopticHead.loss_by_feat'][2]) < 100  # % of the step
    assert any(k.startswith('aten::') for k in rows)


def test_profile_table_of_a_cuda_run_gives_gpu_time_per_scope(tmp_path):
    """write_profile(device=True), as a CUDA profile writes it: a scope's row is its CPU-side
    event (not the GPU range of the same name), with the kernel time of its operators and the
    range's span; kernels are counted once (through the operators that launched them) and the
    operators are ranked by them (stand-in events, microseconds over 2 iterations)."""
    from types import SimpleNamespace as Ev

    from torch.autograd import DeviceType

    def ev(key, count, cpu, self_cpu, dev, self_dev, kind=DeviceType.CPU):
        return Ev(key=key, count=count, cpu_time_total=cpu, self_cpu_time_total=self_cpu,
                  device_time_total=dev, self_device_time_total=self_dev, device_type=kind)
    events = [ev('stage:backbone', 2, 4000, 0, 3000, 0),
              ev('aten::conv2d', 40, 3000, 3000, 6000, 6000),
              ev('aten::copy_', 8, 1000, 1000, 2000, 2000),
              ev('stage:backbone', 2, 0, 0, 9000, 9000, DeviceType.CUDA),  # the GPU range
              ev('sm90_gemm_kernel', 40, 0, 0, 6000, 6000, DeviceType.CUDA)]
    prof = Ev(key_averages=lambda: events)
    path = tmp_path / 'p.txt'
    bench.write_profile(prof, ['stage:backbone'], 2, str(path), 'title', device=True)
    text = path.read_text()
    assert 'GPU kernel time per iteration (sum over operators): 4.0 ms' in text
    rows = {c[0]: c[1:] for c in (line.strip('| ').split(' | ') for line in text.splitlines()
                                  if line.startswith('| '))}
    assert rows['stage:backbone'] == ['1', '2.0', '100.0', '1.5', '4.5']
    assert rows['aten::copy_'] == ['4', '0.5', '25.0', '1.0', '25.0']
    assert 'sm90_gemm_kernel' not in rows
    ops = [line.split(' | ')[0] for line in text.splitlines() if line.startswith('| aten')]
    assert ops == ['| aten::conv2d', '| aten::copy_']  # by GPU time


@pytest.mark.parametrize('phase', ['train', 'infer'])
def test_worker_runs_an_mmseg_segmentor_on_real_ade20k_images(phase):
    """The semantic ClustSeg (mmseg EncoderDecoder) through the mmseg task: the ADE20K images
    of tests/data, real label maps in training."""
    res = bench.run_worker(_job('configs/semantic/clustseg_compact_embedded_ade20k.py', phase,
                                batch=2))
    assert res['model_type'] == 'EncoderDecoder'
    if phase == 'train':
        assert math.isfinite(res['last_loss']) and res['last_loss'] > 0
        assert _positive(res['s_per_iter'])
    else:
        assert _positive(res['ms_per_img'])
    assert _positive(res['peak_mem_mb'])


def test_failing_phase_is_reported_not_raised(capsys):
    bench.worker_main(json.dumps(_job(CLUSTSEG, 'train', amp='fp16')))
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith(bench.RESULT_MARK)]
    res = json.loads(line[-1][len(bench.RESULT_MARK):])
    assert 'fp16 training needs CUDA' in res['error']
    table = bench.format_table(dict(
        meta=dict(device_name='cpu', amp='fp16', infer_size=[1, 1], train_size=1, batch=1,
                  warmup=0, iters=1, mem_kind='rss'),
        rows=[dict(label='x', params_m=1.0, infer=dict(phase='infer', ms_per_img=2.0,
                                                      img_per_s=500.0, peak_mem_mb=3.0),
                   train=res)]))
    assert '| x | 1.00 | 2.0 | 500.00 | 3 | n/a | n/a |' in table
    assert 'n/a: x train: fp16 training needs CUDA' in table


def test_msda_implementation_choice():
    # on CPU mmcv always runs the PyTorch path; on CUDA `auto` needs mmcv's CUDA ops
    assert bench.resolve_msda('kernel', 'cpu') == 'pytorch'
    assert bench.resolve_msda('pytorch', 'cuda') == 'pytorch'
    assert bench.resolve_msda('kernel', 'cuda') == 'kernel'
    assert bench.resolve_msda('auto', 'cuda') == \
        ('kernel' if bench.mmcv_has_cuda_ops() else 'pytorch')


@pytest.mark.slow
def test_benchmark_run_compares_clustseg_and_mask2former(tmp_path, capsys):
    """The whole tool: 2 models x 2 phases, each in its own subprocess, table + JSON."""
    out = tmp_path / 'bench.json'
    results = bench.main([CLUSTSEG, M2F, '--infer-size', str(SIZE), str(SIZE), '--train-size',
                          str(SIZE), '--batch', '1', '--iters', '1', '--warmup', '0',
                          '--host-malloc', 'default', '--count-ops', '--out', str(out)])
    table = capsys.readouterr().out
    # the CPU workers ran with the C library's malloc settings, and the header says so
    assert results['meta']['host_malloc'] == 'default' and '| host malloc: default' in table
    assert json.loads(out.read_text()) == json.loads(json.dumps(results))
    rows = {r['label']: r for r in results['rows']}
    assert sorted(rows) == ['clustseg_compact_embedded', 'mask2former_compact_embedded_panoptic']
    assert rows['mask2former_compact_embedded_panoptic']['infer']['model_type'] == 'Mask2Former'
    for label, row in rows.items():
        assert 'error' not in row['infer'] and 'error' not in row['train'], row
        for value in (row['params_m'], row['infer']['ms_per_img'], row['infer']['img_per_s'],
                      row['infer']['peak_mem_mb'], row['train']['s_per_iter'],
                      row['train']['peak_mem_mb']):
            assert _positive(value), (label, row)
        assert f'| {label} |' in table
    assert '| model | params (M) | infer ms/img |' in table and 'n/a' not in table
    assert 'train ops/step (non-view, data-dependent) |' in table
    assert all(r['train']['ops'] > 0 for r in rows.values())


def test_reference_config_shares_the_compact_clustseg_data_and_schedule():
    ref = Config.fromfile(str(ROOT / M2F))
    clustseg = Config.fromfile(str(ROOT / CLUSTSEG))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'default_hooks', 'randomness', 'env_cfg',
                'default_scope', 'custom_imports', 'auto_scale_lr'):
        assert ref[key] == clustseg[key], key
    # the same PQ evaluation (the ClustSeg config may add further metrics)
    def pq(evaluator):
        metrics = evaluator if isinstance(evaluator, list) else [evaluator]
        found = [{k: v for k, v in m.items() if k != 'backend_args'} for m in metrics
                 if m['type'] == 'ClustSegCocoPanopticMetric']
        assert len(found) == 1, evaluator
        return found[0]

    assert pq(ref.val_evaluator) == pq(clustseg.val_evaluator)
    assert pq(ref.test_evaluator) == pq(clustseg.test_evaluator)
    assert ref.model.type == 'Mask2Former'
    assert ref.model.backbone == clustseg.model.backbone
    assert ref.model.train_cfg.num_points == 512
    assert not ref.model.data_preprocessor.get("batch_augments")


class _EagerRunner:
    """Stands in for ``CudaGraphRunner`` on the CPU: the 'replay' reruns the captured function
    (which reads the captured input buffer), as a graph replay recomputes its outputs."""

    def capture(self, fn):
        self.fn = fn
        return fn()

    def replay(self):
        return self.fn()


@pytest.mark.parametrize('config', [CLUSTSEG, M2F])
def test_cuda_graph_inference_replays_the_network_on_each_new_input(config):
    """``--cuda-graph``: after capture on one image, ``test_step`` on another image copies it
    into the captured input and gives that image's own prediction; the option is refused off
    CUDA, and a model without a panoptic head is refused by name."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DefaultScope

    from clustseg.utils import register_all_modules
    cfg = bench.load_config(dict(label='x', config=config, options={}), {})
    task = bench.make_task(cfg)
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope(task.scope), torch.no_grad():
        from mmengine.registry import MODELS
        task.prepare_model_cfg(SIZE)
        samples = task.test_samples((SIZE, SIZE), 2)
        torch.manual_seed(0)
        model = MODELS.build(cfg.model).eval()
        first, second = (pseudo_collate([s]) for s in samples)
        head = model.panoptic_head

        def masks(batch):  # the last mask logits of the head's forward (either head's output)
            data = model.data_preprocessor(batch, False)
            out = head.forward(model.extract_feat(data['inputs']), data['data_samples'])
            return out.mask_preds[-1] if hasattr(out, 'mask_preds') else out[1][-1]

        want, other = masks(second), masks(first)
        assert not torch.equal(want, other)  # a replay of the captured image would show
        want_seg = model.test_step(second)[0].pred_panoptic_seg.sem_seg
        bench.capture_inference(model, first, _EagerRunner())
        assert torch.equal(masks(second), want)
        assert torch.equal(model.test_step(second)[0].pred_panoptic_seg.sem_seg, want_seg)
        with pytest.raises(bench.BenchmarkError, match='captured for inputs'):
            model.extract_feat(torch.zeros(1, 3, SIZE + 32, SIZE))
        with pytest.raises(bench.BenchmarkError, match='no panoptic_head'):
            bench.capture_inference(torch.nn.Module(), first, _EagerRunner())
    with pytest.raises(SystemExit):
        bench.parse_args(['--device', 'cpu', '--cuda-graph', CLUSTSEG])
    job = _job(CLUSTSEG, 'infer', cuda_graph=True)
    assert 'needs CUDA' in bench._run_one(job)['error']
