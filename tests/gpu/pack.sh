#!/usr/bin/env bash
# Builds a release tree on this (Debian) machine and gathers what the GPU
# check needs to run on a machine that has only an NVIDIA driver (and maybe
# Python with PyTorch): the clasp command and library, the plugins, the ops
# and model test programs with their fixtures, the PyTorch side of the
# benchmark, and the shared libraries of the Debian packages they link
# (CLBlast, libyaml, json-c, matio, zlib, libzip, the OpenCL ICD loader and
# what those pull in), into one folder, build-gpu-pack/ (ignored by git).
# Copy that folder to the GPU machine and run its check.sh there.
#   usage: tests/gpu/pack.sh [OUTDIR]
#   PACK_BUILD=dir: take the binaries from an existing build folder instead
#   of building build-gpu-rel (release, without MPI).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-build-gpu-pack}"
build="${PACK_BUILD:-}"
if [ -z "$build" ]; then
  build=build-gpu-rel
  [ -f "$build/build.ninja" ] ||
    meson setup "$build" --buildtype=release -Dwerror=true -Dmpi=disabled >/dev/null
  ninja -C "$build" >/dev/null
fi
tests=(test_gemm test_ops_layers test_ops_misc test_ops_norm test_winograd test_model test_zoo_arch)

rm -rf "$out.tmp"
mkdir -p "$out.tmp"/{bin,lib,plugins,tests,fixtures,bench}
cp "$build/src/cli/clasp" "$out.tmp/bin/"
for f in "$build"/libclasp.so*; do [ -f "$f" ] && cp -P "$f" "$out.tmp/lib/"; done
find "$build/plugins" -name '*.so' -exec cp {} "$out.tmp/plugins/" \;
for t in "${tests[@]}"; do cp "$build/tests/$t" "$out.tmp/tests/"; done
cp -r tests/fixtures/. "$out.tmp/fixtures/"
cp tests/bench/torch_bench.py "$out.tmp/bench/"
cp tests/gpu/pack_check.sh "$out.tmp/check.sh"

# The shared libraries everything links, but the C library's own (always
# there, and tied to the machine's loader).
{
  export LD_LIBRARY_PATH="$out.tmp/lib"
  ldd "$out.tmp/bin/clasp"
  for f in "$out.tmp"/tests/* "$out.tmp"/plugins/*.so; do ldd "$f"; done
} | awk '$2 == "=>" && $3 ~ /^\// {print $3} $3 == "not" {print "pack: missing " $1 > "/dev/stderr"}' | sort -u | while read -r so; do
  case "$(basename "$so")" in
    libc.so.*|libm.so.*|libdl.so.*|librt.so.*|libpthread.so.*|libresolv.so.*|ld-linux*|libclasp.so*) continue ;;
  esac
  cp -L "$so" "$out.tmp/lib/"
done
rm -rf "$out"
mv "$out.tmp" "$out"
echo "pack: $out ($(du -sh "$out" | cut -f1)); copy it to the GPU machine and run $out/check.sh"
