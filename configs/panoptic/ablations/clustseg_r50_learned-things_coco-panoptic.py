# Ablation (Table 4b): learned ('free parameter') thing queries, memory-bank stuff centers.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(initializer=dict(thing_initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=75, embed_dims=256))))
