#!/bin/sh
# Checks the self-contained libtransface.so made by bindings/build-selfcontained.sh:
#   1. its dynamic symbol table exports exactly the functions of include/transface.h
#      (every defined global symbol starts with transface_, none is missing);
#   2. it needs no Swift runtime library (libswift*, libFoundation*, libdispatch, libBlocksRuntime)
#      and has no run path into the toolchain;
#   3. example.c, test_abi.c and test_parity.c compile against OUT/include + OUT/lib and pass
#      with the toolchain out of reach (env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH=OUT/lib), and
#      ldd confirms that nothing resolves into the toolchain (/opt/swift or $TRANSFACE_TOOLCHAIN).
#
#   bindings/c/test-selfcontained.sh [OUT_DIR]     (default <repo>/out; built first when missing)
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-"$repo/out"}
lib="$out/lib/libtransface.so"
refdir=${TRANSFACE_REFERENCE_DIR:-"$repo/../shared/reference/tiny"}
toolchain=${TRANSFACE_TOOLCHAIN:-/opt/swift}   # the Swift toolchain's install folder
build="$here/build/selfcontained"
CC=${CC:-cc}
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok:   $*"; }

if [ ! -f "$lib" ]; then
    echo "== building $lib"
    "$repo/bindings/build-selfcontained.sh" "$out" || exit 1
fi
mkdir -p "$build"
size=$(wc -c < "$lib")
stripped=$(objcopy --strip-all "$lib" "$build/stripped.so" 2>/dev/null && wc -c < "$build/stripped.so")
echo "library: $lib, $size bytes ($((size / 1024)) KiB; ${stripped:-?} bytes stripped)"

echo "== 1. exported symbols (nm -D --defined-only)"
nm -D --defined-only "$lib" > "$build/nm.txt"
# global/weak definitions have an upper-case type letter; lower case ones are local
awk '$2 ~ /^[A-Z]$/ {print $3}' "$build/nm.txt" | sort > "$build/exported.txt"
awk '$2 ~ /^[a-z]$/ {print $3}' "$build/nm.txt" | sort > "$build/local.txt"
grep -v '^transface_[a-z]' "$build/exported.txt" > "$build/foreign.txt"
grep -oE '\btransface_[a-z0-9_]+\(' "$repo/include/transface.h" | tr -d '(' | sort -u > "$build/declared.txt"
grep '^transface_[a-z]' "$build/exported.txt" > "$build/ours.txt"
if [ -s "$build/foreign.txt" ]; then
    fail "$(wc -l < "$build/foreign.txt") exported symbols do not start with transface_:"
    sed 's/^/    /' "$build/foreign.txt" | head -50
else
    pass "all $(wc -l < "$build/exported.txt") global dynamic symbols start with transface_"
fi
if cmp -s "$build/declared.txt" "$build/ours.txt"; then
    pass "the exported functions are exactly the $(wc -l < "$build/declared.txt") functions of transface.h"
else
    fail "exports and header differ (< header only, > library only):"
    diff "$build/declared.txt" "$build/ours.txt" | grep '^[<>]' | sed 's/^/    /'
fi
if [ -s "$build/local.txt" ]; then
    echo "note: nm -D also lists $(wc -l < "$build/local.txt") LOCAL symbols (in .dynsym with binding LOCAL: not" \
         "exported, not resolvable by other objects; ld.gold leaves them, ld.lld does not):"
    sed 's/^/    /' "$build/local.txt" | head -20
fi

echo "== 2. dependencies (ldd, readelf -d)"
ldd "$lib" > "$build/ldd-lib.txt" 2>&1
sed 's/^/    /' "$build/ldd-lib.txt"
if grep -E 'libswift|libFoundation|libdispatch|libBlocksRuntime|lib_FoundationICU|not found' "$build/ldd-lib.txt" >/dev/null ||
   grep -F "$toolchain/" "$build/ldd-lib.txt" >/dev/null; then
    fail "the library depends on the Swift runtime or misses a library"
else
    pass "no Swift runtime dependency"
fi
if readelf -d "$lib" | grep -E 'R(UN)?PATH' | grep -F "$toolchain" >/dev/null; then
    fail "run path into the toolchain: $(readelf -d "$lib" | grep -E 'R(UN)?PATH')"
else
    pass "run path: $(readelf -d "$lib" | grep -E 'R(UN)?PATH' | sed 's/.*: //' || true)"
fi

echo "== 3. C programs against $out, toolchain out of reach"
cflags="-std=c99 -Wall -Wextra -pedantic -Werror -I $out/include"
link="-L $out/lib -ltransface"
clean_env="env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH=$out/lib"
for prog in example test_abi test_parity; do
    extra=""
    [ $prog = test_abi ] && extra="-lm -lpthread"
    [ $prog = test_parity ] && extra="-lm"
    if ! $CC $cflags -o "$build/$prog" "$here/$prog.c" $link $extra; then
        fail "compile $prog.c"
        continue
    fi
    $clean_env ldd "$build/$prog" > "$build/ldd-$prog.txt" 2>&1
    if grep -F "$toolchain/" "$build/ldd-$prog.txt" >/dev/null || grep 'not found' "$build/ldd-$prog.txt" >/dev/null ||
       ! grep -F "$out/lib/libtransface.so" "$build/ldd-$prog.txt" >/dev/null; then
        fail "$prog: libraries do not all resolve outside the toolchain:"
        sed 's/^/    /' "$build/ldd-$prog.txt"
    else
        pass "$prog: ldd resolves libtransface.so to $out/lib and nothing into $toolchain"
    fi
done
if [ -x "$build/test_abi" ]; then
    if $clean_env "$build/test_abi"; then pass "test_abi"; else fail "test_abi"; fi
fi
if [ -x "$build/test_parity" ] && [ -d "$refdir" ]; then
    if $clean_env "$build/test_parity" --from-reference "$refdir" --save "$build/reference.tfm"; then
        pass "test_parity"
    else
        fail "test_parity"
    fi
    if [ -x "$build/example" ] && [ -f "$build/reference.tfm" ]; then
        if $clean_env "$build/example" "$build/reference.tfm"; then pass "example"; else fail "example"; fi
    fi
else
    echo "SKIP test_parity and example: no reference data at $refdir"
fi

echo
if [ "$failures" = 0 ]; then echo "self-contained library OK ($size bytes)"; else echo "$failures check(s) failed"; fi
[ "$failures" = 0 ]
