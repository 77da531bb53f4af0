#!/usr/bin/env bash
# The GPU check of a folder made by tests/gpu/pack.sh, on a machine without
# the build dependencies: finds the NVIDIA OpenCL library, runs the ops and
# model tests on the GPU, `clasp bench` for the default CNN and ResNet-18,
# PyTorch CUDA on the same workloads when torch is importable, and prints
# the ratios; about 5 minutes.
#   usage: ./check.sh [DEVICE]   (a CLASP_DEVICE value; default: the GPU)
#   PACK_CPU=1: no NVIDIA library needed; runs on whatever OpenCL device
#   the system's ICD files name (to try the pack on a CPU machine).
#   GPU_CHECK_SECONDS: seconds per benchmark workload (default 5).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PATH="$here/bin:$PATH:/usr/bin:/bin"
secs="${GPU_CHECK_SECONDS:-5}"
t0=$(date +%s)
say() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - t0 ))"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: none"

# The NVIDIA OpenCL library, wherever the driver put it.
if [ -z "${PACK_CPU:-}" ]; then
  nv=""
  vendors="${OCL_ICD_VENDORS:-/etc/OpenCL/vendors}"
  if grep -qs nvidia "$vendors"/*.icd 2>/dev/null; then
    echo "OpenCL: NVIDIA registered in $vendors"
  else
    nv=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1/ {print $NF; exit}')
    for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 \
             /usr/local/nvidia/lib /usr/lib/nvidia /opt/nvidia /usr/local/cuda/compat; do
      [ -n "$nv" ] && break
      [ -e "$d/libnvidia-opencl.so.1" ] && nv="$d/libnvidia-opencl.so.1"
    done
    [ -n "$nv" ] || nv=$(find / -xdev -name 'libnvidia-opencl.so.1' 2>/dev/null | head -1)
    if [ -z "$nv" ]; then
      echo "no NVIDIA OpenCL library (libnvidia-opencl.so.1) on this machine: the driver's"
      echo "OpenCL part is missing, so clasp cannot use the GPU here. PACK_CPU=1 runs on the CPU."
      exit 1
    fi
    mkdir -p "$work/vendors"
    echo "$nv" > "$work/vendors/nvidia.icd"
    export OCL_ICD_VENDORS="$work/vendors"
    echo "OpenCL: $nv (registered privately in $OCL_ICD_VENDORS)"
  fi
fi

clasp "devices" || { echo "clasp finds no OpenCL device"; exit 1; }
dev="${1:-${CLASP_DEVICE:-}}"
if [ -n "$dev" ]; then export CLASP_DEVICE="$dev"; else unset CLASP_DEVICE; fi

say "ops and model tests on the device"
user_tune="${CLASP_TUNE-unset}"
export CLASP_PLUGIN_PATH="$here/plugins" CLASP_TUNE=0 CLASP_CACHE_DIR="$work/cache"
export CLASP_CLI="$here/bin/clasp" CLASP_ARCH_FIXTURES="$here/fixtures/arch"
export CLASP_TORCH_FIXTURES="$here/fixtures/torch"
fails=0
for t in "$here"/tests/*; do
  if (cd "$work" && timeout 150 "$t" >"$work/log" 2>&1); then
    echo "ok    $(basename "$t")"
  else
    echo "FAIL  $(basename "$t")"; tail -15 "$work/log"; fails=$((fails + 1))
  fi
done
# The benchmarks tune GEMM on first use only when the caller said CLASP_TUNE=1.
if [ "$user_tune" = unset ]; then unset CLASP_TUNE; else export CLASP_TUNE="$user_tune"; fi

py=$(command -v python3 || true)
torch_ok=0
[ -n "$py" ] && "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && torch_ok=1
((torch_ok)) || echo "PyTorch with CUDA: not importable here; clasp figures only"
# PACK_BENCH="arch batch;arch batch": other workloads (default below).
IFS=';' read -r -a specs <<< "${PACK_BENCH:-default 128;resnet18 32}"
for spec in "${specs[@]}"; do
  set -- $spec
  say "clasp bench --arch $1 --batch $2"
  timeout 200 clasp bench --seconds "$secs" --arch "$1" --batch "$2" | tee "$work/c"
  if ((torch_ok)); then
    say "PyTorch CUDA, --arch $1 --batch $2"
    timeout 120 "$py" "$here/bench/torch_bench.py" --seconds "$secs" --arch "$1" --batch "$2" \
      --device cuda | tee "$work/t"
    for w in inference train pgd10-at pgd10-attack; do
      c=$(awk -v w="$w" '$1==w {print $3}' "$work/c")
      t=$(awk -v w="$w" '$1==w {print $3}' "$work/t")
      [ -n "$c" ] && [ -n "$t" ] && awk -v w="$w" -v c="$c" -v t="$t" \
        'BEGIN {printf "ratio %-12s %8.1f / %8.1f = %.2f\n", w, c, t, c / t}'
    done
  fi
done
say "done, $fails test program(s) failed"
[ "$fails" -eq 0 ]
