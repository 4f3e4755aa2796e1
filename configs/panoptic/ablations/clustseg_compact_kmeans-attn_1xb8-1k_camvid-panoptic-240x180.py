# Held-out ablation (Table 4c "K-Means" at CamVid-panoptic scale), the definition of
# configs/panoptic/ablations/clustseg_r50_kmeans-attn_coco-panoptic.py: hard assignment by
# straight-through Gumbel-softmax (argmax at test), one round per layer, no clustering loss.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(decoder=dict(variant=dict(type='GumbelHardAssignment'),
                                             num_iters=1),
                                loss_weights=dict(e_step=0.0)))
