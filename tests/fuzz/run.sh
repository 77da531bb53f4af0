#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c) into build-fuzz/ with
# clang, AddressSanitizer and UBSan, runs each target for SECONDS (default
# 60) on a copy of its seed corpus (tests/fuzz/corpus/<target>/, never
# written), and prints per target the executions libFuzzer counted and what
# it found. Exits non-zero when any target crashed, leaked, hit undefined
# behaviour, ran out of memory or timed out; the inputs that did so are kept
# in build-fuzz/fuzz-findings/<target>/ (replay one with
# build-fuzz/tests/fuzz/fuzz_<target> FILE).
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-60}
shift || true
all=(plan safetensors idx cifar cifar100 stl10 svhn arch pickle torchzip groups)
targets=("${all[@]}")
(($#)) && targets=("$@")
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || { echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2; }

# Longest input per target: enough for every seed (a CIFAR-10 record is
# 3073 bytes, a CIFAR-100 one 3074, an STL-10 image 27648, an SVHN MAT file
# with one image about 3.2 kB, a small torch.save checkpoint up to 5.5 kB)
# and small enough that each run stays fast.
declare -A max_len=([plan]=4096 [safetensors]=4096 [idx]=4096 [cifar]=8192 [cifar100]=8192
                    [stl10]=32768 [svhn]=8192 [arch]=2048 [pickle]=8192 [torchzip]=8192
                    [groups]=4096)

build=build-fuzz
work=$build/fuzz-work
findings=$build/fuzz-findings
results=$build/fuzz-results.json # one JSON line per target, for .ci/test's summary
mkdir -p "$build"
rm -rf "$work" "$findings" "$results"

configure() {
  [ -f $build/build.ninja ] ||
    CC=clang meson setup $build --buildtype=debugoptimized -Dwerror=true -Dtests=false \
      -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
}
if ! configure || ! ninja -C $build; then
  echo '{"name": "fuzz build", "result": "FAIL"}' >"$results"
  echo "fuzz: building the harnesses failed" >&2
  exit 1
fi

# The readers write and read scratch files on every input: keep those in
# memory when the system offers a RAM file system.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/clasp-fuzz.XXXXXX")
[ -d /dev/shm ] && [ -w /dev/shm ] && { rmdir "$scratch"; scratch=$(mktemp -d /dev/shm/clasp-fuzz.XXXXXX); }
trap 'rm -rf "$scratch"' EXIT

# UBSan reports must end the run with a crash libFuzzer records; the
# library is built with -fno-sanitize-recover for the same reason.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export TMPDIR=$scratch
unset CLASP_PLUGIN_PATH

status=0
printf '%-12s %12s  %s\n' target executions result
for t in "${targets[@]}"; do
  exe=$build/tests/fuzz/fuzz_$t
  [ -x "$exe" ] || { echo "fuzz: no target '$t' (known: ${all[*]})" >&2; exit 2; }
  mkdir -p "$work/$t/corpus" "$findings/$t"
  cp tests/fuzz/corpus/"$t"/* "$work/$t/corpus/"
  log=$work/$t/fuzz.log
  dict=()
  [ -f tests/fuzz/dict/$t.dict ] && dict=(-dict=tests/fuzz/dict/$t.dict)
  rc=0
  "$exe" "${dict[@]}" ${CLASP_FUZZ_SEED:+-seed="$CLASP_FUZZ_SEED"} -max_total_time="$secs" -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$findings/$t/" "$work/$t/corpus" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  found=$(find "$findings/$t" -type f | sort)
  if [ $rc -eq 0 ] && [ -z "$found" ]; then
    result=ok
    printf '%-12s %12s  ok\n' "$t" "${execs:-?}"
  else
    result=FAIL
    status=1
    printf '%-12s %12s  FOUND (exit %d): %s\n' "$t" "${execs:-?}" "$rc" "${found:-see $log}"
    grep -E 'ERROR:|SUMMARY:|runtime error:|^fuzz|==[0-9]+==' "$log" | head -n 20 | sed 's/^/    /'
  fi
  printf '{"name": "fuzz_%s", "result": "%s", "executions": %s}\n' \
    "$t" "$([ $result = ok ] && echo OK || echo FAIL)" "${execs:-0}" >>"$results"
done
[ $status -eq 0 ] || echo "fuzz: inputs that failed are in $findings/; logs in $work/"
exit $status
