# Ablation (issue 9, item 5b): no ClustSeg core. No dreamy start and no recurrent cross-attention
# decoder: the full-resolution E/M starts from the pixel embedding grid-sampled at the K seed
# points (what the full model adds the decoder's centers to). Measures what the learned centers
# contribute beyond the learned embedding + soft SLIC.
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(initializer=None, decoder=None)
