# Ablation, Table 4c "Vanilla (Eq. 5)" (= Table 4a "+ Dreamy-Start only": the paper reports the
# same numbers for both rows): the dreamy start with standard cross-attention in every decoder
# layer, i.e. one attention per layer whose softmax runs over the pixels, and no clustering loss
# (the E-step assignment maps are not supervised; the class / mask predictions after every
# layer still are).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(variant=dict(type='SoftmaxOverPixels'), num_iters=1),
                                loss_weights=dict(e_step=0.0)))
