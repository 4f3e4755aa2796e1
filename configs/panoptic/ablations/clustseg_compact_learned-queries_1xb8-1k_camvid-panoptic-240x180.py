# Held-out ablation (Table 4b #1 at CamVid-panoptic scale), the definition of
# configs/panoptic/ablations/clustseg_r50_learned-queries_coco-panoptic.py: free-parameter
# queries for things (75) and stuff (8, query k tied to stuff class k) instead of the dreamy
# start.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(initializer=dict(
    thing_initializer=dict(_delete_=True, type='LearnedInitializer', num_queries=75,
                           embed_dims=64),
    stuff_initializer=dict(_delete_=True, type='LearnedInitializer', num_queries=8,
                           embed_dims=64, query_classes=list(range(8))))))
