#!/bin/sh
# Installs the self-contained libtransface like any other C library:
#
#   PREFIX/lib/libtransface.so.X.Y.Z               SONAME libtransface.so.X (X = TRANSFACE_VERSION_MAJOR)
#   PREFIX/lib/libtransface.so.X -> libtransface.so.X.Y.Z
#   PREFIX/lib/libtransface.so   -> libtransface.so.X    (for -ltransface)
#   PREFIX/lib/pkgconfig/transface.pc
#   PREFIX/include/transface.h
#   PREFIX/share/transface/transface.proto
#
#   [PREFIX=/usr/local] [DESTDIR=] bindings/install.sh [OUT_DIR]
#
# OUT_DIR (default <repo>/out) is the output of bindings/build-selfcontained.sh; it is built
# first when OUT_DIR/lib/libtransface.so is missing (that needs the Swift toolchain; installing
# an already built OUT_DIR does not). DESTDIR stages the files under DESTDIR/PREFIX while the
# .pc file keeps prefix=PREFIX (as `make install DESTDIR=...`). Needs patchelf (Debian package
# `patchelf`): the self-contained build sets no SONAME and a RUNPATH of $ORIGIN, so the
# installed copy gets SONAME libtransface.so.X and no run path (its dependencies are ordinary
# system libraries). The version comes from the TRANSFACE_VERSION_* macros of the header.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$repo/out"}
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}

die() { echo "install.sh: $*" >&2; exit 1; }

case $prefix in /*) ;; *) die "PREFIX must be an absolute path (got '$prefix')" ;; esac
command -v patchelf >/dev/null || die "patchelf is needed to set the SONAME (apt-get install patchelf)"

if [ ! -f "$out/lib/libtransface.so" ]; then
    echo "== $out/lib/libtransface.so missing: building it"
    "$repo/bindings/build-selfcontained.sh" "$out"
fi
for f in lib/libtransface.so include/transface.h include/transface.proto; do
    [ -f "$out/$f" ] || die "$out/$f missing (not an output folder of build-selfcontained.sh?)"
done

macro() {   # value of #define TRANSFACE_VERSION_$1 in the header
    v=$(sed -n "s/^#define TRANSFACE_VERSION_$1 \([0-9][0-9]*\)\$/\1/p" "$out/include/transface.h")
    [ -n "$v" ] || die "no TRANSFACE_VERSION_$1 in $out/include/transface.h"
    echo "$v"
}
major=$(macro MAJOR)
version=$major.$(macro MINOR).$(macro PATCH)
soname=libtransface.so.$major
real=libtransface.so.$version

libdir=$prefix/lib
includedir=$prefix/include
datadir=$prefix/share/transface
mkdir -p "$destdir$libdir/pkgconfig" "$destdir$includedir" "$destdir$datadir"

# Copy under a temporary name, fix it, then move into place (a running program keeps the old file).
tmp="$destdir$libdir/.$real.tmp"
cp "$out/lib/libtransface.so" "$tmp"
patchelf --set-soname "$soname" "$tmp"
if readelf -d "$tmp" | grep -E '\((RUNPATH|RPATH)\)' >/dev/null; then patchelf --remove-rpath "$tmp"; fi
chmod 755 "$tmp"
mv -f "$tmp" "$destdir$libdir/$real"
ln -sf "$real" "$destdir$libdir/$soname"
ln -sf "$soname" "$destdir$libdir/libtransface.so"

cp "$out/include/transface.h" "$destdir$includedir/transface.h"
cp "$out/include/transface.proto" "$destdir$datadir/transface.proto"
chmod 644 "$destdir$includedir/transface.h" "$destdir$datadir/transface.proto"

# Libs.private: the shared libraries it NEEDs (-lX for libX.so.N), minus libc and the loader.
# Only `pkg-config --static` prints them; they are listed as libraries rather than
# Requires.private modules so that plain --cflags/--libs work without the -dev packages' .pc files.
private=$(readelf -d "$out/lib/libtransface.so" | sed -n 's/.*(NEEDED).*\[lib\(.*\)\.so[.0-9]*\]$/-l\1/p' |
          grep -v -x -e '-lc' | tr '\n' ' ' | sed 's/ $//')
[ -n "$private" ] || die "readelf -d found no NEEDED libraries in $out/lib/libtransface.so"

cat > "$destdir$libdir/pkgconfig/transface.pc" <<EOF
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include
datadir=\${prefix}/share/transface

Name: transface
Description: TransFace face recognition (ViT) on the CPU, C ABI of libtransface
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -ltransface
Libs.private: $private
EOF

echo "installed libtransface $version into $destdir$prefix:"
echo "    $libdir/$real (SONAME $soname), $soname, libtransface.so"
echo "    $includedir/transface.h, $datadir/transface.proto, $libdir/pkgconfig/transface.pc"
if [ -z "$destdir" ]; then
    echo "use: PKG_CONFIG_PATH=$libdir/pkgconfig pkg-config --cflags --libs transface"
    echo "(run ldconfig, or add $libdir to the loader's path, if programs cannot find $soname)"
fi
