# Ablation: the full-resolution E/M rounds use the dense softmax over all K centers
# (O(K HW) memory and time per round) instead of the default local form (each pixel among the
# 9 centers of its own and the neighbouring seed-grid cells, O(9 HW)). Same parameters: a
# checkpoint of either form loads in the other (--cfg-options model.final_em_mode=dense).
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(final_em_mode='dense')
