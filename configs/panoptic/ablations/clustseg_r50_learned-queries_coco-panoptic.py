# Ablation, Table 4b #1 (= Table 4a "+ Recurrent Cross-attention only", the same numbers in
# the paper; Table 6's free-parameter rows are its T = 4, 5, 6 twins, docs/method.md):
# free-parameter queries for things (75) and stuff (53, query k tied to stuff class k for
# matching, as the memory-bank centers are) with the recurrent cross-attention decoder.
_base_ = ['./clustseg_r50_learned-things_coco-panoptic.py']
model = dict(panoptic_head=dict(initializer=dict(stuff_initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=53, embed_dims=256,
    query_classes=list(range(53))))))
