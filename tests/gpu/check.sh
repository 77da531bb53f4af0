#!/usr/bin/env bash
# One-shot check on a machine with a GPU (about 8 minutes): build, the ops
# and model tests on the GPU's OpenCL device, `clasp bench` for the default
# CNN and ResNet-18, and PyTorch on CUDA for the same workloads when torch
# is importable, with the ratios. Everything it prints is meant to be
# pasted into a report as it is.
#   usage: tests/gpu/check.sh [DEVICE]   (DEVICE: CLASP_DEVICE value, default "gpu")
set -uo pipefail
cd "$(dirname "$0")/../.."
dev="${1:-${CLASP_DEVICE:-gpu}}"
secs="${GPU_CHECK_SECONDS:-5}"
t0=$(date +%s)
say() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - t0 ))"; }

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"
command -v clinfo >/dev/null && clinfo -l 2>/dev/null | head -20

say "build"
if ! command -v meson >/dev/null || ! command -v ninja >/dev/null; then
  .ci/setup >/dev/null || { echo "cannot install the build tools here"; exit 1; }
fi
if [ ! -f build-gpu/build.ninja ]; then
  meson setup build-gpu --buildtype=release -Dwerror=true >/dev/null || exit 1
fi
ninja -C build-gpu >/dev/null || { ninja -C build-gpu; exit 1; }
clasp=build-gpu/src/cli/clasp
"$clasp" devices
# A device name or index; "gpu" picks the first GPU the default choice finds.
if [ "$dev" = gpu ]; then unset CLASP_DEVICE; else export CLASP_DEVICE="$dev"; fi
if ! "$clasp" devices | grep -q '^\*.*GPU'; then
  echo "warning: the chosen device is not a GPU"
fi

say "ops and model tests on the device"
timeout 300 meson test -C build-gpu --suite ops --print-errorlogs --num-processes 1 2>&1 | tail -15

bench() { # arch batch
  if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    say "clasp and PyTorch CUDA, --arch $1 --batch $2"
    CLASP="$clasp" PYTHON="$(command -v python3)" TORCH_DEVICE=cuda timeout 300 tests/bench/compare.sh "$secs" "$1" "$2"
  else
    say "clasp bench --arch $1 --batch $2 (no PyTorch with CUDA here: clasp figures only)"
    timeout 120 "$clasp" bench --arch "$1" --batch "$2" --seconds "$secs"
  fi
}
bench default 128
bench resnet18 128
say "done"
