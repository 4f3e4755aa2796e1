# clustseg_r50_8xb2-lsj-50e_coco.py on COCO test-dev (Table 2): tools/test.py writes the
# predictions for the evaluation server to work_dirs/<this config's name>/ (format only, no
# metric: configs/_base_/datasets/coco_instance_test-dev.py, docs/recipes.md "COCO test-dev").
_base_ = ['./clustseg_r50_8xb2-lsj-50e_coco.py', '../_base_/datasets/coco_instance_test-dev.py']
test_dataloader = dict(dataset={{_base_.test_dev_dataset}})
test_evaluator = dict(
    format_only=True,
    ann_file={{_base_.test_dev_ann_path}},
    outfile_prefix='work_dirs/{{fileBasenameNoExtension}}/detections_test-dev2017_clustseg')
