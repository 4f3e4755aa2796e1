# The embedded COCO-Stuff run (../clustseg_compact_embedded.py) with K = 171 learned center
# embeddings instead of the memory-bank class centers: measures the dreamy start's effect on
# the same data, schedule and seed (docs/model_zoo.md "Semantic").
_base_ = ['../clustseg_compact_embedded.py']
model = dict(decode_head=dict(initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=171, embed_dims=64,
    query_classes=list(range(171)))))
