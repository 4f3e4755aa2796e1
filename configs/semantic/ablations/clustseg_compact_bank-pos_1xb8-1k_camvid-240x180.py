# Held-out diagnostic (not a paper row): the memory bank's class centers get a learned query
# position per class (MemoryBankInitializer(learned_pos=True)), which Eq. 7 defines without
# one. The bank means of thin classes start as near-copies of their surroundings' (cosine
# 0.94-0.96 in the shipped checkpoint) and carry no position, while learned queries, free
# embeddings with a learned position each, scored higher on this benchmark. Everything else as
# the benchmark config; the panoptic twin is
# configs/panoptic/ablations/clustseg_compact_bank-pos_1xb8-1k_camvid-panoptic-240x180.py.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-240x180.py']
model = dict(decode_head=dict(initializer=dict(learned_pos=True)))
