# Ablation, Table 4b #3: free-parameter thing queries, scene-agnostic memory-bank stuff centers
# (Eq. 7).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(initializer=dict(thing_initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=75, embed_dims=256))))
