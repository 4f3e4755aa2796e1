# COCO test-dev 2017, the test split of the paper's instance table (Table 2; §4.2: "train2017 is
# used for training and test-dev for test"): the 20,288 images of test2017/ that COCO's
# image_info_test-dev2017.json lists (from image_info_test2017.zip, into data/coco/annotations).
# Its annotations are not public, so the metric scores nothing: it writes the predictions in
# COCO's results format (`<outfile_prefix>.segm.json`, and `.bbox.json` from the masks' boxes)
# for the evaluation server (docs/recipes.md, "COCO test-dev"). The images have no annotations:
# the test pipeline's LoadAnnotations gives each an empty ground truth. Task configs take
# `test_dev_dataset` and `test_dev_ann_path` (the metric's file) through {{_base_.*}}
# (configs/instance/*_coco_test-dev.py); training and validation stay as their parent's. The
# metric reads the image list under data/coco/: moving test_dataloader.dataset.data_root
# means setting test_evaluator.ann_file too.
test_dev_ann_file = 'annotations/image_info_test-dev2017.json'
test_dev_dataset = dict(ann_file=test_dev_ann_file, data_prefix=dict(img='test2017/'))
test_dev_ann_path = 'data/coco/' + test_dev_ann_file
