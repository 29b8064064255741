#!/bin/sh
# Checks bindings/install.sh: installs OUT_DIR into a temporary PREFIX, then
#   1. the installed files, SONAME and symlinks, and a DESTDIR-staged install;
#   2. pkg-config (PKG_CONFIG_PATH=PREFIX/lib/pkgconfig): version = the header's, and
#      --cflags --libs point at PREFIX (printed);
#   3. compiles test_parity.c and example.c with `cc $(pkg-config --cflags --libs transface)`
#      against the installed copy only, runs test_parity (which writes the tiny reference model
#      with --save) and example on it (synthetic faces, then the 4 reference faces), outside the
#      Swift toolchain's reach (env -i PATH=/usr/bin:/bin, no LD_LIBRARY_PATH: a run path).
#
#   bindings/c/test-install.sh [OUT_DIR]     (default <repo>/out; built by install.sh when missing)
# Environment: TRANSFACE_REFERENCE_DIR (default <repo>/../shared/reference/tiny), CC,
#              TRANSFACE_TOOLCHAIN (default /opt/swift: nothing may resolve into it).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-"$repo/out"}
refdir=${TRANSFACE_REFERENCE_DIR:-"$repo/../shared/reference/tiny"}
toolchain=${TRANSFACE_TOOLCHAIN:-/opt/swift}
CC=${CC:-cc}

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok:   $*"; }

[ -d "$refdir/input" ] || fail "no reference data at $refdir (set TRANSFACE_REFERENCE_DIR)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/transface-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

echo "== 1. install into $prefix"
PREFIX=$prefix DESTDIR= "$repo/bindings/install.sh" "$out"
h="$out/include/transface.h"
version=$(sed -n 's/^#define TRANSFACE_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$h" | tr '\n' . | sed 's/\.$//')
major=${version%%.*}
for f in lib/libtransface.so.$version include/transface.h share/transface/transface.proto lib/pkgconfig/transface.pc; do
    [ -f "$prefix/$f" ] || fail "$prefix/$f not installed"
done
[ "$(readlink "$prefix/lib/libtransface.so")" = "libtransface.so.$major" ] || fail "libtransface.so is not a link to libtransface.so.$major"
[ "$(readlink "$prefix/lib/libtransface.so.$major")" = "libtransface.so.$version" ] || fail "libtransface.so.$major is not a link to libtransface.so.$version"
soname=$(readelf -d "$prefix/lib/libtransface.so.$version" | sed -n 's/.*(SONAME).*\[\(.*\)\]$/\1/p')
[ "$soname" = "libtransface.so.$major" ] || fail "SONAME is '$soname', expected libtransface.so.$major"
if readelf -d "$prefix/lib/libtransface.so.$version" | grep -E '\((RUNPATH|RPATH)\)'; then fail "installed library has a run path"; fi
cmp -s "$h" "$prefix/include/transface.h" || fail "installed header differs from $h"
pass "libtransface.so.$version (SONAME $soname), symlinks, header, .proto, no run path"

PREFIX=/usr/local DESTDIR="$tmp/stage" "$repo/bindings/install.sh" "$out" > "$tmp/destdir.log"
[ -f "$tmp/stage/usr/local/lib/libtransface.so.$version" ] && [ -f "$tmp/stage/usr/local/lib/pkgconfig/transface.pc" ] ||
    fail "DESTDIR install did not stage under $tmp/stage/usr/local"
grep -x 'prefix=/usr/local' "$tmp/stage/usr/local/lib/pkgconfig/transface.pc" >/dev/null || fail "DESTDIR leaked into transface.pc"
pass "DESTDIR=$tmp/stage PREFIX=/usr/local stages the files, transface.pc says prefix=/usr/local"

echo "== 2. pkg-config"
PKG_CONFIG_PATH=$prefix/lib/pkgconfig
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs transface) || fail "pkg-config --cflags --libs transface"
flags=${flags% }   # pkg-config ends with a space
echo "pkg-config --cflags --libs transface: $flags"
echo "pkg-config --static --libs transface: $(pkg-config --static --libs transface)"
[ "$(pkg-config --modversion transface)" = "$version" ] || fail "pkg-config --modversion is not $version"
case " $flags " in *" -I$prefix/include "*"-L$prefix/lib -ltransface "*) ;; *) fail "unexpected flags: $flags" ;; esac
libdir=$(pkg-config --variable=libdir transface)
[ "$libdir" = "$prefix/lib" ] || fail "libdir is $libdir"
pass "version $version, flags point at $prefix"

echo "== 3. C programs built with pkg-config against the installed copy"
cflags="-std=c99 -Wall -Wextra -pedantic -Werror"
# shellcheck disable=SC2086   # $flags is a list of words
$CC $cflags -o "$tmp/test_parity" "$here/test_parity.c" $flags -Wl,-rpath,"$libdir" -lm || fail "compile test_parity.c"
# shellcheck disable=SC2086
$CC $cflags -o "$tmp/example" "$here/example.c" $flags -Wl,-rpath,"$libdir" || fail "compile example.c"
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are kept when set (OpenBLAS may need them on this CPU)
clean="env -i PATH=/usr/bin:/bin${OPENBLAS_CORETYPE:+ OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE}${OPENBLAS_L2_SIZE:+ OPENBLAS_L2_SIZE=$OPENBLAS_L2_SIZE}"
$clean ldd "$tmp/example" > "$tmp/ldd.txt" 2>&1 || fail "ldd example: $(cat "$tmp/ldd.txt")"
sed 's/^/    /' "$tmp/ldd.txt"
grep -F "libtransface.so.$major => $libdir/libtransface.so.$major" "$tmp/ldd.txt" >/dev/null ||
    fail "example does not resolve libtransface.so.$major to $libdir"
if grep -e 'not found' -e "$toolchain/" -e libswift "$tmp/ldd.txt"; then fail "unresolved or toolchain libraries"; fi
pass "example resolves libtransface.so.$major to the installed copy and nothing into $toolchain"

$clean "$tmp/test_parity" --from-reference "$refdir" --save "$tmp/tiny.tfm" || fail "test_parity"
pass "test_parity (model written to tiny.tfm)"
$clean "$tmp/example" "$tmp/tiny.tfm" || fail "example tiny.tfm"
# the 4 aligned 112x112 RGB reference faces: the data of input/u8_hwc.npy (its last 4*112*112*3 bytes)
tail -c $((4 * 112 * 112 * 3)) "$refdir/input/u8_hwc.npy" > "$tmp/faces.rgb"
$clean "$tmp/example" "$tmp/tiny.tfm" "$tmp/faces.rgb" || fail "example tiny.tfm faces.rgb"
pass "example on synthetic and reference faces"
echo
echo "installed library OK (pkg-config: $flags)"
