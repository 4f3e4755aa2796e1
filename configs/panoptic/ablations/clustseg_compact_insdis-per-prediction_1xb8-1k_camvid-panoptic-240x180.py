# Held-out check of the instance discrimination's weight (not a paper row). The recipe adds
# loss_insdis once per step; kMaX-DeepLab's criterion, whose auxiliary loss the paper adopts
# (App. A.1, "we follow (Yu et al., 2022b)"), adds it once per supervised prediction, each
# time on its own pixel draw of the same stride-4 features. Here that sum is taken as
# its expectation: the weight times the 9 supervised predictions of this model (3 decoder
# layers x T = 3 E-steps, EveryEStep). Decided before the runs: the panoptic recipes take
# kMaX's balance if, over four seeds each, its held-out PQ, PQ^Th and PQ^St are each no more
# than one standard error (Welch) below the benchmark config's; docs/model_zoo.md has the runs.
_base_ = ['../clustseg_compact_1xb8-1k_camvid-panoptic-240x180.py']
model = dict(panoptic_head=dict(loss_weights=dict(insdis=9.0)))
