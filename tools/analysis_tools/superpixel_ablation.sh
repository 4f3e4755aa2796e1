#!/usr/bin/env bash
# Issue 9 item 5: the superpixel ablations with one training budget, evaluated on BSDS500 val
# with the curve tool (ASA / UE / BR / BP / CO at K = 200..1000, actual counts in the CSV).
#   (a) full model        configs/superpixel/clustseg_compact_1xb4-1.2k_bsds500-superpixel.py
#   (b) no decoder        ablations/clustseg_compact_no-decoder_bsds500-superpixel.py
#   (c) T = 1             ablations/clustseg_compact_T1_bsds500-superpixel.py
#   (d) learned queries   ablations/clustseg_compact_learned-queries_bsds500-superpixel.py
#   (e) vanilla attention ablations/clustseg_compact_vanilla-attn_bsds500-superpixel.py
#   (f) k-means attention ablations/clustseg_compact_kmeans-attn_bsds500-superpixel.py
#   (g) untrained         (a) at its random initialisation (seeded)
# Every training resumes from its work dir (`--resume`), so the script can be stopped and run
# again; a finished variant is skipped. ITERS (default 1200, the configs' schedule) sets the
# budget for all of them; DATA (default data/bsds500, the standard layout) the dataset root;
# ONLY="a b" runs a subset, KS the K values. Outputs: $OUT_DIR/<variant>/{train,curve}/.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT_DIR=${OUT_DIR:-work_dirs/superpixel_ablation}
DATA=${DATA:-data/bsds500}
ITERS=${ITERS:-1200}
ONLY=${ONLY:-"a b c d e f g"}
KS=${KS:-"200 400 600 800 1000"}
WARM=$(( ITERS < 200 ? ITERS / 2 : 100 ))  # the configs' 100-iteration warm-up, shorter for tiny runs
C=configs/superpixel
A=$C/ablations
declare -A CFG=(
  [a]=$C/clustseg_compact_1xb4-1.2k_bsds500-superpixel.py
  [b]=$A/clustseg_compact_no-decoder_bsds500-superpixel.py
  [c]=$A/clustseg_compact_T1_bsds500-superpixel.py
  [d]=$A/clustseg_compact_learned-queries_bsds500-superpixel.py
  [e]=$A/clustseg_compact_vanilla-attn_bsds500-superpixel.py
  [f]=$A/clustseg_compact_kmeans-attn_bsds500-superpixel.py
  [g]=$C/clustseg_compact_1xb4-1.2k_bsds500-superpixel.py
)
[ -d "$DATA/images/train" ] || { echo "no BSDS500 train split under $DATA (set DATA)"; exit 2; }
for v in $ONLY; do
  cfg=${CFG[$v]:?unknown variant $v (a..g)}
  wd=$OUT_DIR/$v
  mkdir -p "$wd"
  if [ "$v" = g ]; then
    ckpt=$wd/untrained.pth
    [ -f "$ckpt" ] || $PY - "$cfg" "$ckpt" <<'PYEOF'
import sys, torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
import clustseg  # noqa: F401
from mmseg.registry import MODELS
init_default_scope('mmseg')
torch.manual_seed(0)
model = MODELS.build(Config.fromfile(sys.argv[1]).model)
model.init_weights()
torch.save({'state_dict': model.state_dict(), 'meta': {'untrained': True}}, sys.argv[2])
PYEOF
  else
    if [ ! -f "$wd/train/iter_$ITERS.pth" ]; then
      echo "== ($v) training $cfg for $ITERS iterations"
      $PY tools/train.py "$cfg" --work-dir "$wd/train" --resume --cfg-options \
        train_cfg.max_iters="$ITERS" train_cfg.val_interval="$ITERS" \
        param_scheduler.0.end="$WARM" param_scheduler.1.begin="$WARM" \
        param_scheduler.1.end="$ITERS" train_dataloader.dataset.data_root="$DATA" \
        val_dataloader.dataset.data_root="$DATA" default_hooks.checkpoint.save_best=None \
        default_hooks.checkpoint.interval=100
    fi
    ckpt=$wd/train/iter_$ITERS.pth
  fi
  if [ ! -f "$wd/curve/curve.csv" ]; then
    echo "== ($v) curve on $DATA val"
    $PY tools/analysis_tools/superpixel_curve.py "$cfg" "$ckpt" --data-root "$DATA" \
      --split val --ks $KS --out-dir "$wd/curve" --no-grid
  fi
done
echo "== done: $OUT_DIR/<variant>/curve/curve.csv"
