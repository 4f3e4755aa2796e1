# Ablation, Table 4b #4: free-parameter thing queries, scene-adaptive stuff centers: 53 tokens
# pooled from PE(I) by learned per-query maps (Eq. 8 applied to stuff, the panoptic thing
# initializer's class), query k tied to stuff class k for matching.
_base_ = ['./clustseg_r50_learned-things_coco-panoptic.py']
model = dict(panoptic_head=dict(initializer=dict(stuff_initializer=dict(
    _delete_=True, type='PooledImageAdaptiveInitializer', in_channels=256, embed_dims=256,
    num_queries=53, pos_dims=64, query_classes=list(range(53))))))
