# Ablation, Table 4b #2: scene-adaptive thing centers (Eq. 8), free-parameter stuff queries (one
# per stuff class, tied to its class for matching, as the memory-bank centers are).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(initializer=dict(stuff_initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=53, embed_dims=256,
    query_classes=list(range(53))))))
