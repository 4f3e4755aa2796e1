# The fast superpixel model without the cluster decoder, trained as such (3k recipe of
# clustseg_compact-fast_1xb4-3k_bsds500-superpixel.py). The full-resolution recurrent E/M
# (grid dreamy start: the K centers are the embedding read at the grid seeds) does all the
# clustering. Why: the ablation in docs/model_zoo.md ("what the learned ClustSeg part adds")
# measured no gain from the decoder at this budget, and the decoder with its initializer was
# 8.6 of the 46 ms of the onnxruntime network at K = 600 (docs/benchmark.md). The pixel
# decoder, read only by the embedding head here, keeps 1 + 2 axial blocks instead of 1 + 5.
_base_ = ['./clustseg_compact-fast_1xb4-3k_bsds500-superpixel.py']
model = dict(initializer=None, decoder=None, pixel_decoder=dict(num_blocks=(1, 2)))
