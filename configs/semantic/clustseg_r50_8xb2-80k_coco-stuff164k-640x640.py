# ClustSeg semantic segmentation on COCO-Stuff 164k (171 classes) with the ADE20K model and
# recipe (ImageNet-1K R50, K = 171 memory-bank class centers; AdamW 1e-4 with the backbone at
# 0.1x, cosine, batch 16 = 8 GPUs x 2, scale jitter 0.5-2.0, 640 x 640 crops, test shorter side
# 640). The paper reports no COCO-Stuff schedule; 80k iterations is mmseg's COCO-Stuff 164k
# length (~11 epochs).
_base_ = [
    '../_base_/models/clustseg_r50_semantic.py',
    '../_base_/datasets/coco_stuff164k_640x640.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/clustseg_semantic_100e_ade20k.py',
]
# semantic predictions are drawn by mmseg's visualizer (default_runtime.py: the superpixel one)
visualizer = dict(type='SegLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')],
                  name='visualizer')
num_classes = 171
model = dict(decode_head=dict(num_classes=num_classes,
                              initializer=dict(num_classes=num_classes)))
max_iters = 80000
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=0, end=max_iters)
]
interval = 8000
train_cfg = dict(max_iters=max_iters, val_interval=interval)
default_hooks = dict(checkpoint=dict(interval=interval))
