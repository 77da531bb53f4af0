#!/usr/bin/env bash
# clasp run under mpirun with 2 ranks on this machine, against one process.
#   test_mpi.sh eval    sharded validation and evaluation: the counts of a
#                       2-rank run equal those of one process on the same
#                       checkpoint (one process trains and stops at the
#                       last batch; 2 ranks resume: the epoch's validation
#                       and every attack run sharded)
#   test_mpi.sh step    one SGD step on a global batch of 63 split 31 + 32
#                       over 2 ranks equals the single-process step to 1e-6
#                       of the largest weight (float sums in another order)
#   test_mpi.sh resume  2 ranks stopped after 2 batches and resumed on 2
#                       ranks end with the report and weights of an
#                       uninterrupted 2-rank run, bit for bit
#   test_mpi.sh stop    a stop on rank 1 only (the simulated limit a signal
#                       would set) stops both ranks at the same batch, with
#                       the state saved by rank 0; the resumed run completes
# Environment (set by meson): CLASP_CLI, CLASP_PYTHON, CLASP_MPIRUN.
# Exit 77 (skipped) without the data set.
set -euo pipefail
what=${1:?usage: test_mpi.sh eval|step|resume|stop}
here=$(cd "$(dirname "$0")" && pwd)
cli=${CLASP_CLI:?} py=${CLASP_PYTHON:?} mpirun=${CLASP_MPIRUN:?}
data=/usr/share/datasets/fashion-mnist
[ -d "$data" ] || { echo "skipped: no Fashion-MNIST in $data"; exit 77; }

# Open MPI's components stay loaded until exit, so that a leak checker
# (the sanitizer build, tests/lsan.supp) can name their frames.
export OMPI_MCA_mca_base_component_disable_dlclose=1
# Containers often forbid the cross-process memory copies Open MPI's
# shared-memory transport tries first; plain copies work everywhere.
export OMPI_MCA_btl_vader_single_copy_mechanism=none
# Open MPI's frames defeat the sanitizers' fast unwinder: leaks inside it
# then show one frame and escape tests/lsan.supp. (Only a sanitizer build
# reads this.)
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mpi=("$mpirun" --oversubscribe -np 2)
[ "$(id -u)" -eq 0 ] && mpi=("$mpirun" --allow-run-as-root --oversubscribe -np 2)
compare() { "$py" "$here/compare.py" "$@"; }
# BatchNorm, PGD-AT with its random starts, 4 batches of 64; validation
# (150) and test (300) sets in batches of 64 that 2 ranks split 2+1 / 3+2.
cat > bn.yaml <<'YAML'
experiment: {name: mpi-bn, seed: 3}
data: {dataset: fashion-mnist, val_size: 200, train_size: 256}
model: {arch: 'conv3x3-8p1,bn,relu,maxpool2,flatten,fc10'}
train:
  epochs: 1
  batch: 64
  optimiser: {name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.0005}
  val_eval_size: 150
  models:
    - name: pgd-at
      defense: {name: pgd-at, attack: {name: pgd, params: {eps: 0.1, steps: 2, alpha: 0.05}}}
evaluate:
  test_size: 300
  batch: 64
  attacks:
    - {name: fgsm, params: {eps: 0.1}}
    - {name: pgd, params: {eps: 0.1, steps: 3, alpha: 0.04}}
YAML

case "$what" in
eval)
  "$cli" run bn.yaml --output one > one.log 2>&1 || { cat one.log; exit 1; }
  CLASP_STOP_AFTER_BATCHES=4 "$cli" run bn.yaml --output two > two.log 2>&1 && { echo "the stop did not happen"; exit 1; }
  [ -f two/state.safetensors ] || { cat two.log; echo "no state after the stop"; exit 1; }
  "${mpi[@]}" "$cli" run bn.yaml --output two --resume > resume.log 2>&1 || { cat resume.log; exit 1; }
  grep -q "MPI: 2 ranks" resume.log || { cat resume.log; echo "not 2 ranks"; exit 1; }
  compare reports one/report.json two/report.json
  cmp one/pgd-at.safetensors two/pgd-at.safetensors
  ;;
step)
  cat > step.yaml <<'YAML'
experiment: {name: mpi-step, seed: 5}
data: {dataset: fashion-mnist, val_size: 100, train_size: 63}
model: {arch: 'conv3x3-8p1,relu,maxpool2,flatten,fc10'}
train:
  epochs: 1
  batch: 63
  optimiser: {name: sgd, lr: 0.5, momentum: 0.9, weight_decay: 0.0005}
  val_eval_size: 50
  models:
    - name: standard
evaluate:
  test_size: 50
  batch: 50
  attacks:
    - {name: fgsm, params: {eps: 0.1}}
YAML
  "$cli" run step.yaml --output one > one.log 2>&1 || { cat one.log; exit 1; }
  "${mpi[@]}" "$cli" run step.yaml --output two > two.log 2>&1 || { cat two.log; exit 1; }
  compare weights one/standard.safetensors two/standard.safetensors 1e-6
  # The step moved the weights far more than that: a wrong average fails.
  sed 's/lr: 0.5/lr: 0.25/' step.yaml > half.yaml
  "$cli" run half.yaml --output half > half.log 2>&1 || { cat half.log; exit 1; }
  if compare weights one/standard.safetensors half/standard.safetensors 1e-6 > /dev/null 2>&1; then
    echo "half the step passes the comparison: the test cannot tell"; exit 1
  fi
  ;;
resume)
  "${mpi[@]}" "$cli" run bn.yaml --output whole > whole.log 2>&1 || { cat whole.log; exit 1; }
  "${mpi[@]}" -x CLASP_STOP_AFTER_BATCHES=2 "$cli" run bn.yaml --output cut > cut.log 2>&1 && { echo "the stop did not happen"; exit 1; }
  grep -q "interrupted" cut.log || { cat cut.log; exit 1; }
  "${mpi[@]}" "$cli" run bn.yaml --output cut --resume > resumed.log 2>&1 || { cat resumed.log; exit 1; }
  compare reports whole/report.json cut/report.json
  cmp whole/pgd-at.safetensors cut/pgd-at.safetensors
  ;;
stop)
  mpmd=("${mpi[@]:0:${#mpi[@]}-2}")
  "${mpmd[@]}" -np 1 "$cli" run bn.yaml --output s : -np 1 -x CLASP_STOP_AFTER_BATCHES=3 "$cli" run bn.yaml --output s > s.log 2>&1 && { cat s.log; echo "no stop"; exit 1; }
  grep -q "interrupted; the state is saved" s.log || { cat s.log; exit 1; }
  "$py" - s/state.safetensors <<'PY'
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', data[:8])[0]
meta = json.loads(data[8:8 + n])['__metadata__']
state = json.loads(meta['clasp.state'])
pos = state['position']
assert pos['phase'] == 'train' and pos['batch'] == 3, pos
print('stopped at', pos)
PY
  "${mpi[@]}" "$cli" run bn.yaml --output s --resume > r.log 2>&1 || { cat r.log; exit 1; }
  [ -f s/report.json ] && [ ! -f s/state.safetensors ]
  ;;
*) echo "unknown test $what"; exit 2 ;;
esac
echo ok
