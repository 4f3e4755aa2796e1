# Ablation, Table 7b (iterations of the last recurrent cross-attention layer), T = 2: the
# paper's model evaluated on the prediction after E/M round 2 of 3 of its last decoder layer
# (test_iter is 0-based; round 3 is the model's output). A test-time config: evaluate the
# checkpoint of the main config with it (tools/test.py).
_base_ = ['../clustseg_r50_8xb2-lsj-50e_coco-panoptic.py']
model = dict(panoptic_head=dict(test_iter=1))
