# Ablation (Table 4d): vanilla cross-attention (softmax over pixels, Eq. 5) in every decoder
# layer instead of recurrent cross-attention. (The k-means variant needs its E-step logits
# supervised, as kMaX does, to train its Q/K; the panoptic head does not do that yet, so there is
# no k-means panoptic config: it would leave parameters outside the loss.)
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(variant='vanilla')))
