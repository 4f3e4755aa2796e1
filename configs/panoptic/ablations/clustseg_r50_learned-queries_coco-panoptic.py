# Ablation (Table 4b): learned queries for things and stuff (no dreamy start).
_base_ = ['./clustseg_r50_learned-things_coco-panoptic.py']
model = dict(panoptic_head=dict(initializer=dict(stuff_initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=53, embed_dims=256,
    query_classes=list(range(53))))))
