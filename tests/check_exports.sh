#!/bin/sh
# Checks that libclasp exports exactly the public API: every defined
# dynamic symbol is a function or variable declared in include/clasp/*.h,
# and every function declared there (other than static inline ones) is
# exported.   usage: check_exports.sh LIBCLASP_SO INCLUDE_DIR [CC]
set -eu
# The compiler may be a command of several words (meson passes "ccache cc"
# where ccache is installed): every argument after the second.
lib=$1 inc=$2
shift 2
[ $# -gt 0 ] || set -- cc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for h in "$inc"/clasp/*.h; do echo "#include \"clasp/$(basename "$h")\""; done > "$tmp/all.c"
# Preprocessed, so comments and macro bodies are gone; one line.
"$@" -E -P -I"$inc" "$tmp/all.c" | tr -s ' \t\n' '   ' > "$tmp/pp.txt"

# Names followed by '(' (functions, but not '(*name)(' pointers) or by '['
# in an extern declaration (data).
grep -o '[(*]* *clasp_[a-z0-9_]* *(' "$tmp/pp.txt" | grep -v '^(' |
    sed 's/[ (*]//g' | sort -u > "$tmp/called.txt"
grep -o 'extern [^;]*clasp_[a-z0-9_]* *\[' "$tmp/pp.txt" |
    grep -o 'clasp_[a-z0-9_]* *\[$' | sed 's/[ []//g' | sort -u > "$tmp/data.txt"
# Static inline functions and types are not symbols.
grep -o 'static inline [^;{]*clasp_[a-z0-9_]* *(' "$tmp/pp.txt" |
    grep -o 'clasp_[a-z0-9_]* *($' | sed 's/[ (]//g' | sort -u > "$tmp/inline.txt"
grep -o '} *clasp_[a-z0-9_]* *;\|typedef [^;{]*clasp_[a-z0-9_]* *;\|typedef [^;{]*(\* *clasp_[a-z0-9_]*)' "$tmp/pp.txt" |
    grep -o 'clasp_[a-z0-9_]*' | sort -u > "$tmp/types.txt"
# clasp_plugin_entry is declared for plugins to define, not by the library.
{ cat "$tmp/inline.txt" "$tmp/types.txt"; echo clasp_plugin_entry; } | sort -u > "$tmp/not_symbols.txt"
cat "$tmp/called.txt" "$tmp/data.txt" | sort -u | comm -23 - "$tmp/not_symbols.txt" > "$tmp/declared.txt"

# __odr_asan.NAME: AddressSanitizer's marker beside each exported global
# (sanitizer builds only), not a symbol of clasp's own.
nm -D --defined-only "$lib" | awk '$2 != "A" && $3 !~ /^__odr_asan\./ { print $3 }' |
    sort -u > "$tmp/exported.txt"

status=0
extra=$(comm -13 "$tmp/declared.txt" "$tmp/exported.txt")
if [ -n "$extra" ]; then
    echo "exported by $lib but not declared in $inc/clasp:"
    echo "$extra" | sed 's/^/  /'
    status=1
fi
missing=$(comm -23 "$tmp/declared.txt" "$tmp/exported.txt")
if [ -n "$missing" ]; then
    echo "declared in $inc/clasp but not exported by $lib:"
    echo "$missing" | sed 's/^/  /'
    status=1
fi
[ $status -eq 0 ] && echo "$(wc -l < "$tmp/exported.txt") exported symbols, all declared; every declared function exported"
exit $status
