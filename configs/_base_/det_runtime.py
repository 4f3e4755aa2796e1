# Runtime of the panoptic / instance configs (mmdet scope); see default_runtime.py.
default_scope = 'mmdet'
custom_imports = dict(imports=['clustseg'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # tools/ switch it to gloo where there is no GPU
vis_backends = [dict(type='LocalVisBackend')]
# mmdet's, drawing an image without any panoptic segment too (ClustSegDetVisualizer)
visualizer = dict(type='ClustSegDetVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
