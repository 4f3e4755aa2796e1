# Ablation, not a paper row (Tables 4b / 6 ablate "free parameters" on COCO panoptic only):
# the R50 ADE20K model with K = 150 learned, image-independent center embeddings (query k
# still predicts class k) instead of the memory-bank class centers of the dreamy start.
_base_ = ['../clustseg_r50_8xb2-100e_ade20k-640x640.py']
model = dict(decode_head=dict(initializer=dict(
    _delete_=True, type='LearnedInitializer', num_queries=150, embed_dims=256,
    query_classes=list(range(150)))))
