# Ablation (Table 4d): vanilla cross-attention (softmax over pixels, Eq. 5) in every decoder
# layer instead of recurrent cross-attention.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(variant='vanilla')))
