#!/bin/sh
# Builds a self-contained release libtransface.so: the Swift runtime is linked statically and
# only the C ABI (transface_*) is exported, so C, Python (ctypes/cffi) and Rust users need no
# Swift toolchain at run time. The system libraries the package uses (OpenBLAS, protobuf-c,
# zlib; libstdc++ for the Swift runtime) stay ordinary dynamic dependencies.
#
#   bindings/build-selfcontained.sh [OUT_DIR]      (default: <repo>/out)
#
# Produces OUT_DIR/lib/libtransface.so and OUT_DIR/include/{transface.h,transface.proto}.
# Environment:
#   TRANSFACE_SCRATCH  scratch build folder (default <repo>/.build-selfcontained)
#   TRANSFACE_LINKER   lld (default when the toolchain has ld.lld) or gold. gold also works but
#                      leaves 8 LOCAL Swift metadata symbols in .dynsym (reached through
#                      GLOB_DAT relocations); lld resolves them and .dynsym holds only the ABI.
#   TRANSFACE_STRIP=1  strip the copy in OUT_DIR (about 6.4 MB instead of 10 MB)
# Exports are limited by bindings/c/exports.map (transface_[a-z]*: protobuf-c's generated
# transface__* names stay local).
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-"$repo/out"}
scratch=${TRANSFACE_SCRATCH:-"$repo/.build-selfcontained"}
exports="$repo/bindings/c/exports.map"
swift_bin=$(dirname "$(command -v swift)")
linker=${TRANSFACE_LINKER:-}
if [ -z "$linker" ]; then
    if [ -x "$swift_bin/ld.lld" ]; then linker=lld; else linker=gold; fi
fi

cd "$repo"
set -- -c release --product transface --scratch-path "$scratch" \
    -Xswiftc -static-stdlib -Xswiftc -use-ld="$linker" \
    -Xlinker --version-script="$exports"
swift build "$@"
bin=$(swift build "$@" --show-bin-path)

mkdir -p "$out/lib" "$out/include"
cp "$bin/libtransface.so" "$out/lib/libtransface.so"
if [ "${TRANSFACE_STRIP:-0}" = 1 ]; then strip --strip-unneeded "$out/lib/libtransface.so"; fi
cp "$repo/include/transface.h" "$repo/include/transface.proto" "$out/include/"
echo "built $out/lib/libtransface.so ($(wc -c < "$out/lib/libtransface.so") bytes, linker $linker)"
