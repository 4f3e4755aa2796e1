#!/usr/bin/env bash
# Issue 7's overfitting check (PQ >= 90 on the 3 real COCO panoptic images of
# tests/data/coco_panoptic), in the three stages that were run (docs/model_zoo.md):
#   1. configs/panoptic/clustseg_compact_1xb2-1.5k_coco-panoptic-overfit-400.py from scratch:
#      400-pixel longer side, AdamW 1e-3, cosine over 1500 iterations;
#   2. the same config at a 560-pixel longer side (train and test) from stage 1's last
#      checkpoint: AdamW 5e-4 peak, 20-iteration warm-up, cosine over 500 iterations;
#   3. stage 2 again from stage 2's last checkpoint, cosine over 700 iterations.
# Evaluation every 250 (stage 1) / 100 iterations. A stage whose last checkpoint exists is
# skipped, an interrupted one resumes (`--resume`), so the script can be stopped and run again.
# OUT_DIR (default work_dirs/panoptic_overfit) holds stage{1,2,3}/; ONLY="2 3" runs a subset.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT_DIR=${OUT_DIR:-work_dirs/panoptic_overfit}
ONLY=${ONLY:-"1 2 3"}
CFG=configs/panoptic/clustseg_compact_1xb2-1.5k_coco-panoptic-overfit-400.py
S560=("train_dataloader.dataset.pipeline.2.scale=(560,560)"
      "val_dataloader.dataset.pipeline.1.scale=(560,560)"
      "test_dataloader.dataset.pipeline.1.scale=(560,560)"
      optim_wrapper.optimizer.lr=5e-4 train_cfg.val_interval=100
      default_hooks.checkpoint.interval=100)
declare -A ITERS=([1]=1500 [2]=500 [3]=700)

run_stage() {  # stage, extra cfg-options...
  local s=$1 dir=$OUT_DIR/stage$1
  shift
  if [ -f "$dir/iter_${ITERS[$s]}.pth" ]; then
    echo "[overfit] stage $s done ($dir/iter_${ITERS[$s]}.pth)"
    return
  fi
  local resume=()
  [ -f "$dir/last_checkpoint" ] && resume=(--resume)
  echo "[overfit] stage $s -> $dir"
  "$PY" tools/train.py "$CFG" --work-dir "$dir" "${resume[@]}" --cfg-options \
    train_cfg.max_iters="${ITERS[$s]}" param_scheduler.1.end="${ITERS[$s]}" "$@"
}

for s in $ONLY; do
  case $s in
    1) run_stage 1 ;;
    2) run_stage 2 load_from="$OUT_DIR/stage1/iter_${ITERS[1]}.pth" "${S560[@]}" ;;
    3) run_stage 3 load_from="$OUT_DIR/stage2/iter_${ITERS[2]}.pth" "${S560[@]}" ;;
    *) echo "[overfit] unknown stage '$s' in ONLY (allowed: 1 2 3)" >&2; exit 2 ;;
  esac
done
