# Ablation (issue 9, item 5d): learned queries instead of the grid dreamy start (Eq. 9). The
# decoder starts from the first K rows of a learned 1000 x D table (with learned query
# positions), whatever the image; the full-resolution E/M still starts from the grid seeds plus
# the decoder's centers. Training draws K in [30, 200], so rows above 200, used when testing
# K > 200, keep their initialisation: the learned table cannot follow an arbitrary K, which is
# what the grid start is for.
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(initializer=dict(_delete_=True, type='LearnedInitializer', num_queries=1000,
                              embed_dims=64, variable_k=True))
