# The shipped compact superpixel model's recipe (clustseg_compact_1xb4-1.2k_bsds500-superpixel.py:
# ResNet-18 at 1/4 width, 160 x 160 crops, batch 4, K drawn from [30, 200], AdamW 5e-4) with the
# stride-8 decoder layer's E-steps local as well (each stride-8 pixel assigned among the 9
# centers of its own and the neighbouring seed cells, as the full-resolution E/M: O(9 N)
# instead of O(K N)) and a 2.5x longer schedule: 3k iterations, validated on BSDS500 val every
# 1k (model selection on val; the test split stays held out), checkpoints every 200 iterations
# so that a CPU run can be stopped and resumed (`tools/train.py CONFIG --resume`).
_base_ = ['./clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(decoder=dict(local_levels=(2, )))
max_iters = 3000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=100, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=1000)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=200, max_keep_ckpts=2, save_best='superpixel/ASA'))
