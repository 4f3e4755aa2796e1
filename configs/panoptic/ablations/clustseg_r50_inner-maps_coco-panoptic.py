# Inner E-steps supervised through their assignment maps only (beside Table 7a; not a paper
# row): the E-steps before the last of each decoder layer (12 of the 18) make no class or
# stride-4 mask prediction; their assignment maps M(t) (softmax over the clusters at the
# layer's stride, the paper's "logit maps of K segments", Sec. 3.3) keep the E-step map term,
# matched as their layer's last E-step. The 6 layer outputs are supervised as in the paper
# recipe. Held-out check and costs: docs/model_zoo.md (CamVid-panoptic) and
# docs/benchmark.md ("T's training cost").
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(deep_supervision=dict(type='InnerEStepMaps')))
