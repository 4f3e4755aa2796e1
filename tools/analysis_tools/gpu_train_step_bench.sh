#!/bin/bash
# Training-step time and peak memory on a GPU through tools/train.py (how docs/benchmark.md's
# GPU table was measured). Run on the GPU machine as: OUT=dir bash THIS. Steps: (0) a
# faulthandler run of benchmark.py (it crashed there); (1) training-step
# time and peak memory of ClustSeg-R50 (T=3, T=1) vs mmdet's Mask2Former-R50 panoptic through
# tools/train.py (mmengine logs time/iter and max_memory_allocated), 1024 x 1024 LSJ crops,
# batch 2, fp32 and fp16 AMP, on the 3 real panoptic images; (2) meanwhile the compact
# ClustSeg overfit (object_mask_thr 0.5) in the background on the same GPU.
set -o pipefail
export PYTHONUNBUFFERED=1
# the GPU machine has no internet: backbones keep their random initialisation (README)
export CLUSTSEG_OFFLINE_WEIGHTS=${CLUSTSEG_OFFLINE_WEIGHTS:-none}
T=${T:-60}; IT=${IT:-40}
timeout 40 python3 -X faulthandler tools/analysis_tools/benchmark.py configs/panoptic/clustseg_compact_embedded.py \
  --phases infer --warmup 0 --iters 1 --infer-size 320 320 > $OUT/diag.log 2>&1
echo "diag rc=$?" >> $OUT/diag.log
timeout ${OV_T:-330} python3 tools/train.py configs/panoptic/clustseg_compact_embedded.py --work-dir /tmp/ov_cs \
  --cfg-options train_cfg.max_iters=1000 train_cfg.val_interval=250 default_hooks.checkpoint.interval=250 \
  default_hooks.logger.interval=50 param_scheduler.1.end=1000 > $OUT/overfit_clustseg.log 2>&1 &
D="train_dataloader.dataset.data_root=tests/data/coco_panoptic/ train_dataloader.dataset.ann_file=annotations/panoptic_val2017.json train_dataloader.dataset.data_prefix.img=val2017/ train_dataloader.dataset.data_prefix.seg=annotations/panoptic_val2017/ train_dataloader.num_workers=4 train_cfg.max_iters=$IT train_cfg.val_interval=100000 default_hooks.logger.interval=10 log_processor.window_size=10 default_hooks.checkpoint.interval=100000 val_dataloader=None val_cfg=None val_evaluator=None"
CS=configs/panoptic/clustseg_r50_8xb2-lsj-50e_coco-panoptic.py
tb() {  # name config [train.py args...] -- [cfg options...]
  local n=$1 c=$2; shift 2
  echo "### $n $(date +%T)" >> $OUT/trainbench.log
  timeout $T python3 tools/train.py $c --work-dir /tmp/tb_$n "$@" > /tmp/tb_$n.log 2>&1
  echo "rc=$?" >> $OUT/trainbench.log
  grep "Iter(train)" /tmp/tb_$n.log | sed 's/ *base_lr.*eta: [^ ]* */ /' | cut -c1-110 >> $OUT/trainbench.log
  grep -m3 "Error\|error:" /tmp/tb_$n.log >> $OUT/trainbench.log
}
nvidia-smi --query-gpu=name,memory.total --format=csv > $OUT/trainbench.log
tb clustseg_T3_fp32 $CS --cfg-options $D
tb mask2former_fp32 configs/reference/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py --cfg-options $D
tb clustseg_T1_fp32 $CS --cfg-options $D model.panoptic_head.decoder.num_iters=1
tb clustseg_T3_fp16 $CS --amp --cfg-options $D
tb mask2former_fp16 configs/reference/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py --amp --cfg-options $D
wait
grep -h "coco_panoptic/PQ:" $OUT/overfit_clustseg.log | cut -c1-330
cat $OUT/trainbench.log
