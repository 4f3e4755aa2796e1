# Ablation, Table 4c "K-Means": k-means cross-attention as the paper defines it, a hard
# pixel-to-cluster assignment by Gumbel-softmax (straight-through, temperature 1; the plain
# argmax at test) without any recursion (one E/M round per layer), and no clustering loss: the
# Q / K projections are trained through the straight-through gradient.
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(variant=dict(type='GumbelHardAssignment'),
                                             num_iters=1),
                                loss_weights=dict(e_step=0.0)))
