# Ablation: the decoder's E-step as kMaX-DeepLab's k-means cross-attention (hard argmax over
# clusters, `HardArgmax`) instead of the softmax over clusters, at the recipe's T = 3 and with
# every E-step's loss. This swaps the E-step alone; it is not Table 4c's K-Means row, which the
# panoptic and CamVid ablations define as the Gumbel hard assignment at T = 1 without the E-step
# loss (docs/method.md, "Ablations").
_base_ = ['../clustseg_compact_1xb4-1.2k_bsds500-superpixel.py']
model = dict(decoder=dict(variant=dict(type='HardArgmax')))
