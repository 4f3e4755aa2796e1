# Held-out ablation (Table 4d at CamVid-panoptic scale): T = 1 EM round in each recurrent
# cross-attention layer instead of 3; everything else as the benchmark config.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(decoder=dict(num_iters=1)))
