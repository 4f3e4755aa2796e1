# Held-out ablation (Table 4c "Vanilla" at CamVid scale), the definition of
# configs/panoptic/ablations/clustseg_r50_vanilla-attn_coco-panoptic.py: standard
# cross-attention (softmax over the pixels, SoftmaxOverPixels), one round per layer; the class
# maps after every layer are still supervised.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-240x180.py']
model = dict(decode_head=dict(decoder=dict(variant=dict(type='SoftmaxOverPixels'), num_iters=1)))
