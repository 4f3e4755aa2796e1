# Supervision variant beside Table 7a (not a paper row): only the decoder's output is
# supervised (no intermediate supervision at all).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(deep_supervision=dict(type='OutputOnly')))
