#!/usr/bin/env bash
# Data-parallel scaling on this machine: images/s of `clasp run` training
# with 1 process and with 2 MPI ranks (each rank with half the cores, see
# README "Several processes with MPI"), and the time the 2-rank run spends
# averaging gradients. A benchmark, not a test: the figures depend on the
# machine and on what else runs; the runs alternate (1, 2, 1, 2, ...) so
# that a changing load hits both alike.
#   usage: tests/bench/mpi_scaling.sh [REPEATS] [ARCH] [BATCH] [TRAIN_SIZE] [DEFENSE]
#   ARCH: default (the default CNN), or any model.arch; DEFENSE: none or pgd-at
set -euo pipefail
cd "$(dirname "$0")/../.."
reps="${1:-2}" arch="${2:-default}" batch="${3:-128}" n="${4:-2048}" defense="${5:-none}"
clasp="${CLASP:-$PWD/build/src/cli/clasp}"
[ -x "$clasp" ] || { echo "build clasp first (.ci/setup)" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "mpirun not found (apt-get install openmpi-bin)" >&2; exit 1; }
export CLASP_PLUGIN_PATH="${CLASP_PLUGIN_PATH:-$PWD/build/plugins}"
py="${PYTHON:-python3}"
mpi=(mpirun --oversubscribe --bind-to none -np 2)
[ "$(id -u)" -eq 0 ] && mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
model="    - name: standard"
[ "$defense" = pgd-at ] && model="    - name: pgd-at
      defense: {name: pgd-at, attack: {name: pgd, params: {eps: 0.1, steps: 10, alpha: 0.02}}}"
cat > "$work/bench.yaml" <<YAML
experiment: {name: mpi-scaling, seed: 1}
data: {dataset: fashion-mnist, val_size: 1000, train_size: $n}
model: {arch: '$arch'}
train:
  epochs: 1
  batch: $batch
  optimiser: {name: sgd, lr: 0.01, momentum: 0.9}
  val_eval_size: $batch
  models:
$model
evaluate:
  test_size: $batch
  batch: $batch
  attacks:
    - {name: fgsm, params: {eps: 0.1}}
YAML

echo "clasp run: 1 epoch of $n images, batch $batch, arch $arch, defense $defense; $(nproc) cores"
printf "%-6s %-5s %10s %10s %14s %12s\n" run ranks "images/s" "train s" "allreduce s" "MPI wait s"
for r in $(seq "$reps"); do
  for ranks in 1 2; do
    out="$work/out-$r-$ranks"
    if [ "$ranks" = 1 ]; then
      "$clasp" run "$work/bench.yaml" --output "$out" > "$out.log" 2>&1
    else
      "${mpi[@]}" "$clasp" run "$work/bench.yaml" --output "$out" > "$out.log" 2>&1
    fi
    secs=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['models'][0]['timings']['train_seconds'])" "$out/report.json")
    ar=$(tr '\r' '\n' < "$out.log" | sed -n 's/.*allreduce: \([0-9.]*\) s.*waiting on MPI \([0-9.]*\) s.*/\1 \2/p' | tail -1)
    [ -n "$ar" ] || ar="- -"
    printf "%-6s %-5s %10.1f %10.2f %14s %12s\n" "$r" "$ranks" "$("$py" -c "print($n / $secs)")" "$secs" \
      "${ar%% *}" "${ar##* }"
  done
done
