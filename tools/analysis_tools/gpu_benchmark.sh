#!/bin/bash
# Everything a session with a lent GPU runs for the speed comparison of docs/benchmark.md
# ("One-shot GPU benchmark"), inside about 6 minutes of device time: ClustSeg-R50 panoptic
# T = 3 and T = 1 vs mmdet's Mask2Former-R50 (inference 800 x 1333 fp32 / bf16 / fp16, training
# step 1024^2 batch 2 with peak memory), plus the semantic and instance rows. Writes
# gpu_benchmark.json, gpu_benchmark.md and gpu_benchmark.log to $OUT.
#
#   On your own machine, once:   bash tools/analysis_tools/gpu_benchmark.sh --prepare
#       (.gpu/ from ../shared/device/prepare.sh, plus mmcv's prebuilt CUDA-ops wheel repacked
#        as .gpu/mmcv-site.tar.xz, 18 MB instead of 37 MB, so that the tree + .gpu/ fit the
#        64 MiB a run carries)
#   On the GPU machine:          bash tools/analysis_tools/gpu_benchmark.sh   (run tool, carry .gpu)
#   On a CPU, as the test does:  bash tools/analysis_tools/gpu_benchmark.sh --device cpu ...
# Arguments after the script's own go to tools/analysis_tools/gpu_benchmark.py (--help);
# the default budget of the measurements is --budget-s 300.
# Environment: OUT (default work_dirs/gpu_benchmark), PYTHON (default python3),
# GPU_BENCH_INSTALL=auto|1|0 (auto: install the carried .gpu/ stack when nvidia-smi exists).
set -o pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1

if [ "${1:-}" = "--prepare" ]; then
  shared=${SHARED_DEVICE:-../shared/device}
  bash "$shared/prepare.sh" || exit 1  # the small set: no mmcv wheel
  whl=$(ls "$shared"/wheels/mmcv-2.1.0-cp312-*.whl 2>/dev/null | head -1)
  if [ -n "$whl" ]; then
    tmp=$(mktemp -d) && python3 -m zipfile -e "$whl" "$tmp" && \
      tar cf - -C "$tmp" . | xz -T0 -6 > .gpu/mmcv-site.tar.xz; rc=$?; rm -rf "$tmp"
    [ $rc = 0 ] || { echo "could not repack $whl" >&2; exit 1; }
  else
    echo "no prebuilt mmcv wheel in $shared/wheels: mmcv will be built on the GPU machine" >&2
  fi
  tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  gpu=$(du -sb .gpu | cut -f1)
  echo "travels: tree $((tree / 1048576)) MiB + .gpu $((gpu / 1048576)) MiB = $(((tree + gpu) / 1048576)) MiB (limit 64 MiB)"
  [ $((tree + gpu)) -le $((64 * 1048576)) ] || { echo "over the 64 MiB a run carries" >&2; exit 1; }
  exit 0
fi

OUT=${OUT:-work_dirs/gpu_benchmark}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export CLUSTSEG_OFFLINE_WEIGHTS=${CLUSTSEG_OFFLINE_WEIGHTS:-none}  # nothing is downloaded
install=${GPU_BENCH_INSTALL:-auto}
if [ "$install" = auto ]; then
  install=0; [ -f .gpu/install.sh ] && command -v nvidia-smi >/dev/null && install=1
fi
t0=$(date +%s)
if [ "$install" = 1 ]; then
  if [ -f .gpu/mmcv-site.tar.xz ] && [ ! -d /tmp/site/mmcv ]; then
    mkdir -p /tmp/site && tar xJf .gpu/mmcv-site.tar.xz -C /tmp/site
  fi
  # shellcheck disable=SC1091
  source .gpu/install.sh > "$OUT/install.log" 2>&1 || { cat "$OUT/install.log"; exit 1; }
  tail -1 "$OUT/install.log"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
echo "setup: $(( $(date +%s) - t0 )) s"
"${PYTHON:-python3}" -X faulthandler tools/analysis_tools/gpu_benchmark.py --out-dir "$OUT" "$@" \
  2> "$OUT/gpu_benchmark.log"
rc=$?
grep '^\[gpu_benchmark\]\|^error' "$OUT/gpu_benchmark.log" >&2
exit $rc
