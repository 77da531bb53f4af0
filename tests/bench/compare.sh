#!/usr/bin/env bash
# Side-by-side benchmark: `clasp bench` and the same workloads in PyTorch
# (when Debian's python3-torch is installed), run one after the other on this
# machine, with the ratio clasp / PyTorch per workload. A benchmark, not a
# test: the figures depend on the machine and on what else is running.
#   usage: tests/bench/compare.sh [SECONDS_PER_WORKLOAD] [ARCH] [BATCH]
#   ARCH: default (the default CNN), resnet18, preact-resnet18, wrn-D-W,
#         dm-wrn-D-W[-swish] (DeepMind's WideResNet of the RobustBench zoo), ...
#   TORCH_DEVICE=cuda runs the PyTorch side on the GPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
arch="${2:-default}"
batch="${3:-128}"
clasp="${CLASP:-build/src/cli/clasp}"   # CLASP=path: another build
[ -x "$clasp" ] || { echo "build clasp first (.ci/setup)" >&2; exit 1; }
export POCL_AFFINITY="${POCL_AFFINITY:-1}"

out_c=$(mktemp) out_t=$(mktemp)
trap 'rm -f "$out_c" "$out_t"' EXIT
echo "== clasp"
"$clasp" bench --seconds "$secs" --arch "$arch" --batch "$batch" | tee "$out_c"
py="${PYTHON:-/usr/bin/python3}"   # PYTHON=path: another interpreter with torch
if "$py" -c "import torch" 2>/dev/null; then
  # Debian's torch calls whatever libblas.so.3 points to; the reference BLAS
  # is many times slower than OpenBLAS and would make the ratio meaningless.
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  case "$blas" in
    *openblas*) ;;
    *) echo "warning: libblas.so.3 is $blas, not OpenBLAS (apt-get install libopenblas0-pthread)" >&2 ;;
  esac
  echo "== PyTorch"
  "$py" tests/bench/torch_bench.py --seconds "$secs" --arch "$arch" --batch "$batch" ${TORCH_DEVICE:+--device "$TORCH_DEVICE"} | tee "$out_t"
  echo "== ratio clasp / PyTorch (images/s)"
  for w in inference train pgd10-at pgd10-attack; do
    c=$(awk -v w="$w" '$1==w {print $3}' "$out_c")
    t=$(awk -v w="$w" '$1==w {print $3}' "$out_t")
    [ -n "$c" ] && [ -n "$t" ] && awk -v w="$w" -v c="$c" -v t="$t" \
      'BEGIN {printf "%-12s %8.1f / %8.1f = %.2f\n", w, c, t, c / t}'
  done
else
  echo "PyTorch not found for $py (apt-get install python3-torch); clasp figures only"
fi
