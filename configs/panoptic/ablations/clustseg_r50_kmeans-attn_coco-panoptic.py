# Ablation (Table 4d): k-means cross-attention (kMaX-DeepLab: hard argmax over the clusters in
# the M-step) in every decoder layer instead of recurrent cross-attention. Its Q/K projections
# are trained through the loss on each E-step's soft assignment map (loss_weights.e_step > 0,
# the default), as kMaX supervises the logits its argmax comes from.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(variant='kmeans')))
