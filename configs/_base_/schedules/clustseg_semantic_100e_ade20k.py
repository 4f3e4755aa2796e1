# Paper recipe (§4.3, App. A): 100 epochs of ADE20K train (20210 images) at batch 16:
# ceil(20210 / 16) = 1264 iterations per epoch, 126400 in all; AdamW with cosine decay (the
# paper) and the optimizer of the Mask2Former recipe (MMSegmentation's is MMDetection's): lr
# 1e-4 with the backbone at 0.1x (the paper's "1e-5"; docs/recipes.md), no weight decay on
# norms, query embeddings and position parameters, gradient norm clipped at 0.01. Same
# parameter groups as configs/_base_/schedules/clustseg_50e_coco.py.
_base_ = ['./clustseg_50e_coco.py']
max_iters = 126400
param_scheduler = [
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=False, begin=0, end=max_iters)
]
interval = 6320  # 5 epochs
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=interval)
default_hooks = dict(
    checkpoint=dict(interval=interval, save_best='mIoU', rule='greater'),
    visualization=dict(_delete_=True, type='SegVisualizationHook', draw=False))
# the recipe's batch (8 GPUs x 2); tools/train.py --auto-scale-lr scales the learning rate
# linearly to another GPU count, and warns without it
auto_scale_lr = dict(enable=False, base_batch_size=16)
