#!/bin/sh
# Builds a platform wheel of the Python binding that needs no Swift toolchain: the self-contained
# libtransface.so (bindings/build-selfcontained.sh, stripped) is bundled as
# transface/_native/libtransface.so, which transface._lib loads when TRANSFACE_LIBRARY is unset.
#
#   bindings/python/build-wheel.sh [--no-bundle] [-o WHEEL_DIR] [OUT_DIR]
#
#   OUT_DIR     output of build-selfcontained.sh (default <repo>/out; built when missing)
#   WHEEL_DIR   where the wheel goes (default OUT_DIR/dist)
#   --no-bundle bundle libtransface.so only: the wheel (py3-none-linux_x86_64) then needs the
#               system libraries (OpenBLAS, oneDNN, FFTW, protobuf-c, libjpeg-turbo, libpng,
#               cJSON, libgomp) installed, e.g. Debian's libopenblas0 libdnnl2 libfftw3-single3
#               libprotobuf-c1 libturbojpeg0 libpng16-16 libcjson1 libgomp1.
# By default the wheel also bundles, auditwheel-style, every library libtransface.so needs
# (ldd's closure) except those the manylinux policy lets a wheel take from the system (glibc,
# libstdc++, libgcc_s, zlib), each with RUNPATH $ORIGIN (patchelf) so the loader finds them
# beside libtransface.so. It is then tagged manylinux_2_M (M = the newest glibc symbol version
# needed, at least 35, the first policy whose libstdc++ covers GCC 12's), after checking every
# bundled file against that policy; otherwise linux_x86_64.
# Environment: PYTHON (default python3; needs pip, and setuptools >= 61 to build offline).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
bundle=1
dist=
while [ $# -gt 0 ]; do
    case $1 in
        --no-bundle) bundle=0; shift ;;
        -o) [ $# -ge 2 ] || { echo "build-wheel.sh: -o needs a folder" >&2; exit 2; }; dist=$2; shift 2 ;;
        -*) echo "usage: build-wheel.sh [--no-bundle] [-o WHEEL_DIR] [OUT_DIR]" >&2; exit 2 ;;
        *) break ;;
    esac
done
out=${1:-"$repo/out"}
dist=${dist:-"$out/dist"}

die() { echo "build-wheel.sh: $*" >&2; exit 1; }
command -v patchelf >/dev/null || die "patchelf is needed (apt-get install patchelf)"
if [ ! -f "$out/lib/libtransface.so" ]; then
    echo "== $out/lib/libtransface.so missing: building it"
    "$repo/bindings/build-selfcontained.sh" "$out"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/transface-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Build from a copy, so no _native/ folder (nor setuptools' build/) ever lands in the source tree.
src=$tmp/src
mkdir -p "$src"
cp "$here/pyproject.toml" "$here/setup.py" "$here/README.md" "$src/"
cp -R "$here/transface" "$src/"
find "$src" -name __pycache__ -type d -prune -exec rm -rf {} +
native=$src/transface/_native
mkdir "$native"
cp "$out/lib/libtransface.so" "$native/"
strip --strip-unneeded "$native/libtransface.so"
patchelf --set-rpath '$ORIGIN' "$native/libtransface.so"

# Libraries a manylinux wheel may take from the system (auditwheel's policy list, x86_64).
system_lib() {
    case $1 in
        libc.so.6|libm.so.6|libmvec.so.1|libdl.so.2|librt.so.1|libpthread.so.0|libanl.so.1|libutil.so.1|\
        libnsl.so.1|libresolv.so.2|libstdc++.so.6|libgcc_s.so.1|libatomic.so.1|libz.so.1|libexpat.so.1|\
        ld-linux-x86-64.so.2|linux-vdso.so.1) return 0 ;;
        *) return 1 ;;
    esac
}

platform=
if [ "$bundle" = 1 ]; then
    env -u LD_LIBRARY_PATH ldd "$native/libtransface.so" > "$tmp/ldd.txt" || die "ldd failed: $(cat "$tmp/ldd.txt")"
    if grep -e 'not found' -e libswift -e "${TRANSFACE_TOOLCHAIN:-/opt/swift}/" "$tmp/ldd.txt"; then die "unresolved or Swift libraries"; fi
    awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' "$tmp/ldd.txt" > "$tmp/deps.txt"
    while read -r name path; do
        if system_lib "$name"; then continue; fi
        cp -L "$path" "$native/$name"
        chmod 755 "$native/$name"
        patchelf --set-rpath '$ORIGIN' "$native/$name"
    done < "$tmp/deps.txt"

    # manylinux check: what is left to the system, and the newest symbol versions needed from it
    : > "$tmp/needed.txt"; : > "$tmp/versions.txt"
    for f in "$native"/*; do
        readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' >> "$tmp/needed.txt"
        readelf -V -W "$f" | awk '/Version needs section/ {n = 1; next} /^Version/ {n = 0}
                                  n && $2 == "Name:" {print $3}' >> "$tmp/versions.txt"
    done
    outside=
    for n in $(sort -u "$tmp/needed.txt"); do
        [ -f "$native/$n" ] || system_lib "$n" || outside="$outside $n"
    done
    newest() { grep "^$1_[0-9]" "$tmp/versions.txt" | sed "s/^$1_//" | sort -V | tail -n 1; }
    within() { [ -z "$1" ] || [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -n 1)" = "$2" ]; }
    glibc=$(newest GLIBC); glibcxx=$(newest GLIBCXX); cxxabi=$(newest CXXABI); gcc=$(newest GCC)
    minor=${glibc#2.}; minor=${minor%%.*}; minor=${minor:-0}
    [ "$minor" -ge 35 ] || minor=35
    echo "needs from the system: GLIBC_$glibc GLIBCXX_$glibcxx CXXABI_$cxxabi GCC_$gcc${outside:+; not allowed:$outside}"
    # the manylinux_2_35 limits (auditwheel's policy): GLIBCXX 3.4.30, CXXABI 1.3.13, GCC 12.0.0
    if [ -z "$outside" ] && within "$glibcxx" 3.4.30 && within "$cxxabi" 1.3.13 && within "$gcc" 12.0.0; then
        platform=manylinux_2_${minor}_x86_64
    else
        echo "note: not manylinux-compatible, tagging the wheel linux_x86_64"
    fi
fi
echo "bundled in transface/_native:"
ls -l "$native" | awk 'NR > 1 {printf "    %-24s %10d bytes\n", $9, $5}'

# setuptools from the running Python when it is recent enough and can build wheels (its own
# bdist_wheel from 70.1, or the wheel package beside it; no network), else pip's isolation
isolation=
if "$python" -c 'import setuptools, sys; sys.exit(int(setuptools.__version__.split(".")[0]) < 61)' 2>/dev/null &&
   "$python" -c 'import importlib.util as u; import sys; sys.exit(not (u.find_spec("setuptools.command.bdist_wheel") or u.find_spec("wheel")))' 2>/dev/null; then
    isolation=--no-build-isolation
fi
mkdir -p "$dist"
(cd "$src" && TRANSFACE_WHEEL_PLATFORM=$platform "$python" -m pip wheel -q --no-deps $isolation -w "$tmp/wheel" .)
wheel=$(ls "$tmp/wheel"/transface-*.whl) || die "pip wheel made no wheel"
case $wheel in *-py3-none-"${platform:-linux_x86_64}".whl) ;; *) die "unexpected wheel tag: $wheel" ;; esac
mv -f "$wheel" "$dist/"
wheel=$dist/$(basename "$wheel")
echo "built $wheel ($(wc -c < "$wheel") bytes)"
