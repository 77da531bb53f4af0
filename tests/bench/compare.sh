#!/usr/bin/env bash
# Side-by-side benchmark: `clasp bench` and the same workloads in PyTorch
# (when Debian's python3-torch is installed) on this machine, each side run
# RUNS times, interleaved (clasp, PyTorch, clasp, PyTorch, ...) so that a
# change in the machine's load hits both sides alike; prints every run, then
# per workload the median and the best of each side and their ratios
# clasp / PyTorch. A benchmark, not a test: the figures depend on the
# machine and on what else is running.
#   usage: tests/bench/compare.sh [SECONDS_PER_WORKLOAD] [ARCH] [BATCH] [RUNS]
#   ARCH: default (the default CNN), resnet18, preact-resnet18, wrn-D-W,
#         dm-wrn-D-W[-swish] (DeepMind's WideResNet of the RobustBench zoo), ...
#   RUNS: runs per side (default 3; RUNS=... in the environment works too)
#   TORCH_DEVICE=cuda runs the PyTorch side on the GPU.
#   INPUT=CxHxW, CLASSES=K: another input shape or class count on both sides
#   (INPUT=3x224x224 ARCH tv-resnet50 for ImageNet's ResNet-50).
#   ONLY=workload runs one workload on both sides (--only).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-10}"
arch="${2:-default}"
batch="${3:-128}"
runs="${4:-${RUNS:-3}}"
clasp="${CLASP:-build/src/cli/clasp}"   # CLASP=path: another build
[ -x "$clasp" ] || { echo "build clasp first (.ci/setup)" >&2; exit 1; }
export POCL_AFFINITY="${POCL_AFFINITY:-1}"
only=()
[ -n "${ONLY:-}" ] && only=(--only "$ONLY")
shape=()
[ -n "${INPUT:-}" ] && shape+=(--input "$INPUT")
[ -n "${CLASSES:-}" ] && shape+=(--classes "$CLASSES")

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
py="${PYTHON:-/usr/bin/python3}"   # PYTHON=path: another interpreter with torch
have_torch=0
if "$py" -c "import torch" 2>/dev/null; then
  have_torch=1
  # Debian's torch calls whatever libblas.so.3 points to; the reference BLAS
  # is many times slower than OpenBLAS and would make the ratio meaningless.
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  case "$blas" in
    *openblas*) ;;
    *) echo "warning: libblas.so.3 is $blas, not OpenBLAS (apt-get install libopenblas0-pthread)" >&2 ;;
  esac
else
  echo "PyTorch not found for $py (apt-get install python3-torch); clasp figures only"
fi

for r in $(seq 1 "$runs"); do
  echo "== clasp, run $r of $runs"
  "$clasp" bench --seconds "$secs" --arch "$arch" --batch "$batch" "${only[@]}" "${shape[@]}" | tee "$dir/c$r"
  if ((have_torch)); then
    echo "== PyTorch, run $r of $runs"
    "$py" tests/bench/torch_bench.py --seconds "$secs" --arch "$arch" --batch "$batch" \
      "${shape[@]}" "${only[@]}" ${TORCH_DEVICE:+--device "$TORCH_DEVICE"} | tee "$dir/t$r"
  fi
done

# The images/s of workload $2 in files $1* (one number a line).
figures() { cat "$1"[0-9]* 2>/dev/null | awk -v w="$2" '$1==w && $2=="images/s" {print $3}'; }
# "median best" of the numbers on stdin, or nothing for none.
stats() {
  sort -g | awk '{v[NR]=$1} END {if (NR) {m = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; print m, v[NR]}}'
}

echo "== summary over $runs run(s) per side, images/s: median (best)"
for w in inference train pgd10-at pgd10-attack; do
  read -r cm cb < <(figures "$dir/c" "$w" | stats) || true
  [ -n "${cm:-}" ] || continue
  if ((have_torch)); then
    read -r tm tb < <(figures "$dir/t" "$w" | stats) || true
  fi
  if [ -n "${tm:-}" ]; then
    awk -v w="$w" -v cm="$cm" -v cb="$cb" -v tm="$tm" -v tb="$tb" 'BEGIN {
      printf "%-12s clasp %8.1f (%8.1f)  PyTorch %8.1f (%8.1f)  ratio median %.2f, best %.2f\n",
             w, cm, cb, tm, tb, cm / tm, cb / tb }'
  else
    awk -v w="$w" -v cm="$cm" -v cb="$cb" 'BEGIN {
      printf "%-12s clasp %8.1f (%8.1f)\n", w, cm, cb }'
  fi
  cm="" cb="" tm="" tb=""
done
