# Held-out ablation (Table 4c "K-Means" at CamVid scale), the definition of
# configs/panoptic/ablations/clustseg_r50_kmeans-attn_coco-panoptic.py: hard assignment by
# straight-through Gumbel-softmax (GumbelHardAssignment; argmax at test), one round per layer.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-240x180.py']
model = dict(decode_head=dict(decoder=dict(variant=dict(type='GumbelHardAssignment'),
                                           num_iters=1)))
