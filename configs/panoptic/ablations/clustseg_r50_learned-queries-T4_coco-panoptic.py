# Ablation, Table 6 (query initialization with more iterations): free-parameter queries with
# T = 4. The paper prints T = 3 in each free-parameter row while its text says the rows use
# more iterations, and its first row (53.5 PQ) is not the T = 3 free-parameter model of
# Table 4b #1 (53.2 PQ); we read the rows as T = 4, 5 and 6 (docs/method.md).
_base_ = ['./clustseg_r50_learned-queries_coco-panoptic.py']
model = dict(panoptic_head=dict(decoder=dict(num_iters=4)))
