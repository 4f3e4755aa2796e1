# Ablation, Table 4a "BASELINE": free-parameter queries for things and stuff (no dreamy start)
# updated by standard cross-attention decoders (softmax over pixels, one attention per layer,
# no clustering loss), i.e. the learned-queries initializer with the vanilla decoder.
_base_ = ['./clustseg_r50_learned-queries_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(variant=dict(type='SoftmaxOverPixels'), num_iters=1),
                                loss_weights=dict(e_step=0.0)))
