# Short name of the paper's main panoptic model: tools/dist_train.sh configs/panoptic/clustseg_swin-b.py 8
_base_ = ['./clustseg_swin-b_8xb2-lsj-50e_coco-panoptic.py']
