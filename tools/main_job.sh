#!/usr/bin/env bash
# README main job, on the real BSDS500 images committed in tests/data/bsds500:
#   1. install everything (tools/install.sh, a no-op when already installed);
#   2. train the compact model briefly on the 12 embedded train images (embedded config);
#   3. evaluate the shipped checkpoint on the 6 embedded val images: metric table + overlays;
#   4. sweep K for the shipped model, skimage SLIC and a regular grid: curve.csv + curve.png.
# Everything is written under $OUT_DIR (default work_dirs/main_job).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
PY=.venv/bin/python
# the offline switch (README): nothing here is pretrained, and nothing may be downloaded
export CLUSTSEG_OFFLINE_WEIGHTS=${CLUSTSEG_OFFLINE_WEIGHTS:-none}
OUT_DIR=${OUT_DIR:-work_dirs/main_job}
CKPT=${CKPT:-clustseg/weights/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.pth}
CKPT_CFG=configs/superpixel/clustseg_compact-nodec_1xb4-3k_bsds500-superpixel.py
EMB_CFG=configs/superpixel/clustseg_compact_embedded.py
DATA=tests/data/bsds500
mkdir -p "$OUT_DIR"
t0=$(date +%s)

echo "== [1/3] training $EMB_CFG on $DATA (12 train images), then validating on 6 val images"
$PY tools/train.py "$EMB_CFG" --work-dir "$OUT_DIR/train_embedded"

echo "== [2/3] shipped checkpoint on $DATA val: metrics at K=600, overlays in $OUT_DIR/overlays"
$PY tools/test.py "$CKPT_CFG" "$CKPT" --work-dir "$OUT_DIR/test_shipped" \
  --out "$OUT_DIR/test_shipped/metrics.json" --show-dir "$OUT_DIR/overlays" \
  --cfg-options test_dataloader.dataset.data_root="$DATA" \
  test_dataloader.dataset.data_prefix.img_path=images/val \
  test_dataloader.dataset.data_prefix.seg_map_path=groundTruth/val \
  test_dataloader.num_workers=0 test_dataloader.persistent_workers=False

echo "== [3/3] K sweep: shipped model vs SLIC vs regular grid on $DATA val"
$PY tools/analysis_tools/superpixel_curve.py "$CKPT_CFG" "$CKPT" --data-root "$DATA" \
  --split val --ks 200 400 600 800 1000 --out-dir "$OUT_DIR/curve"

echo "== main job done in $(( $(date +%s) - t0 )) s (after install); outputs in $OUT_DIR:"
echo "   train_embedded/ (log, checkpoint), test_shipped/metrics.json, overlays/, curve/curve.{csv,png}"
