# Held-out ablation (Table 4b at CamVid scale): K = 11 free-parameter center embeddings (query k
# tied to class k) instead of the dreamy start's memory-bank class centers.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-240x180.py']
model = dict(decode_head=dict(initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=11, embed_dims=64,
    query_classes=list(range(11)))))
