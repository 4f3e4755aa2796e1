#!/usr/bin/env bash
# Idempotent install of ClustSeg and its pinned stack into a virtualenv (default .venv/).
# Order matters: torch first, then mmcv built from source against it, then the rest.
# A second run with unchanged requirements only checks the imports and exits.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
C=requirements/constraints.txt
stamp="$VENV/.clustseg-install"
want=$(cat requirements/*.txt setup.py | sha256sum | cut -d' ' -f1)
check='import torch, torchvision, mmcv, mmcv.ops, mmengine, mmdet, mmseg, timm, panopticapi, pycocotools, skimage, h5py, tqdm, onnx, onnxruntime, clustseg'

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
  echo "[install] $VENV is up to date"
  exit 0
fi
t0=$(date +%s)
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$C")
echo "[install] 1/5 torch + build tools"
"${pip[@]}" -r requirements/torch.txt -r requirements/build.txt
echo "[install] 2/5 mmcv with ops (built from source against torch; ~10 min the first time on 2 cores)"
MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-2} "${pip[@]}" --no-build-isolation -r requirements/mmcv.txt
echo "[install] 3/5 OpenMMLab stack, tools and ONNX (export, onnxruntime backend)"
"${pip[@]}" -r requirements/runtime.txt -r requirements/tests.txt -r requirements/onnx.txt
echo "[install] 4/5 panopticapi (no deps)"
"${pip[@]}" --no-deps -r requirements/nodeps.txt
echo "[install] 5/5 clustseg (editable)"
"${pip[@]}" --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "$check"
# the console script registered by setup.py's entry_points
[ -x "$VENV/bin/clustseg-superpixels" ] || { echo "[install] clustseg-superpixels missing"; exit 1; }
echo "$want" > "$stamp"
echo "[install] done in $(( $(date +%s) - t0 )) s"
