# Cheaper supervision of the inner E-steps (beside Table 7a; not a paper row): every E-step is
# still supervised, but the E-steps before the last of each decoder layer (12 of the 18) are
# matched and supervised at 12544 uniform points per image (Mask2Former's point count for a
# 1024^2 crop, 19 % of the stride-4 map) instead of on the whole map; the 6 layer outputs
# are supervised as in the paper recipe. Held-out check and costs: docs/model_zoo.md
# (CamVid-panoptic) and docs/benchmark.md ("T's training cost").
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(deep_supervision=dict(type='InnerEStepPoints', num_points=12544)))
