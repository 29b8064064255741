#!/bin/sh
# Smoke test of the platform wheel (build-wheel.sh): builds it from OUT_DIR, installs it with
# numpy into a fresh venv, and with no TRANSFACE_LIBRARY and the Swift toolchain out of reach
# (env -i PATH=/usr/bin:/bin HOME=$HOME, no LD_LIBRARY_PATH) runs a Python script that converts
# the tiny official reference (shared/reference/tiny/param) with the wheel's `transface convert`,
# embeds the reference faces and compares with the official embeddings within the parity tests'
# tolerance (1e-6 + 1e-4 * max|ref|, tests/conftest.py). It checks that the library and each
# bundled system library were loaded from the wheel (/proc/self/maps), and prints ldd of the
# bundled libtransface.so: no libswift*, libFoundation*, libdispatch or /opt/swift may appear.
#
#   bindings/python/test-wheel.sh [--no-bundle] [OUT_DIR]   (default <repo>/out; built when missing)
# Environment: PYTHON (default python3), TRANSFACE_REFERENCE_DIR (default
# <repo>/../shared/reference/tiny), TRANSFACE_TOOLCHAIN (default /opt/swift).
# numpy comes from pip (network or cache); when pip cannot get it, from PYTHON's own numpy
# (the venv is then made with --system-site-packages, and says so).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
refdir=${TRANSFACE_REFERENCE_DIR:-"$repo/../shared/reference/tiny"}
toolchain=${TRANSFACE_TOOLCHAIN:-/opt/swift}
bundle=
if [ "${1:-}" = --no-bundle ]; then bundle=--no-bundle; shift; fi
out=${1:-"$repo/out"}

die() { echo "FAIL: $*" >&2; exit 1; }
[ -d "$refdir/param" ] || die "no reference data at $refdir (set TRANSFACE_REFERENCE_DIR)"
refdir=$(cd "$refdir" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/transface-wheeltest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "== build the wheel"
"$here/build-wheel.sh" $bundle -o "$tmp/dist" "$out"
wheel=$(ls "$tmp"/dist/transface-*.whl)
size=$(wc -c < "$wheel")

echo "== fresh venv: $(basename "$wheel") + numpy"
venv=$tmp/venv
"$python" -m venv "$venv"
if ! "$venv/bin/python" -m pip install -q "$wheel" 2> "$tmp/pip.log"; then
    sed 's/^/    /' "$tmp/pip.log"
    "$python" -c 'import numpy' 2>/dev/null || die "pip could not install the wheel with numpy, and $python has no numpy"
    echo "note: pip could not get numpy (offline?): the venv uses $python's numpy (--system-site-packages)"
    rm -rf "$venv"
    "$python" -m venv --system-site-packages "$venv"
    "$venv/bin/python" -m pip install -q --no-index "$wheel"
fi
"$venv/bin/python" -m pip list 2>/dev/null | grep -i -E '^(transface|numpy) '

cat > "$tmp/smoke.py" <<'EOF'
import os, pathlib, subprocess, sys
import numpy as np

assert "TRANSFACE_LIBRARY" not in os.environ, "TRANSFACE_LIBRARY is set"
import transface

ref, work, toolchain = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
venv = pathlib.Path(sys.prefix).resolve()
pkg = pathlib.Path(transface.__file__).resolve().parent
native = pkg / "_native"
assert venv in pkg.parents, f"transface imported from {pkg}, not from the venv {venv}"

def mapped():
    """basename -> path of the shared objects mapped into this process."""
    fields = (line.split() for line in open("/proc/self/maps"))
    paths = {f[5] for f in fields if len(f) > 5 and f[5].startswith("/")}
    return {os.path.basename(p): p for p in paths if ".so" in os.path.basename(p)}

# the tiny official weights through the wheel's command line
npz, tfm = work / "tiny_official.npz", work / "tiny.tfm"
names = sorted(p.name[:-4] for p in (ref / "param").glob("*.npy"))
np.savez(npz, **{n: np.load(ref / "param" / f"{n}.npy") for n in names})
subprocess.run([str(venv / "bin" / "transface"), "convert", str(npz), "-o", str(tfm), "--num-heads", "4",
                "--metadata", "set=tiny"], check=True, stdout=subprocess.DEVNULL)

before = mapped()
with transface.Model(tfm) as model:
    lib = transface.library_path()
    print(f"library {lib} (libtransface {transface.version()})")
    assert pathlib.Path(lib).resolve().parent == native, f"loaded {lib}, not the wheel's copy in {native}"
    images = np.load(ref / "input" / "u8_hwc.npy")
    raw = model.embed(images, normalize=False)
    unit = model.embed(images)
emb = np.load(ref / "eval" / "embedding.npy").astype(np.float64)

RTOL, ATOL = 1e-4, 1e-6          # tests/conftest.py: |a - ref| <= ATOL + RTOL * max|ref|
failures = 0
for what, a, r in (("embedding (un-normalised)", raw, emb),
                   ("embedding (normalised)", unit, emb / np.linalg.norm(emb, axis=1, keepdims=True))):
    err, bound = float(np.abs(a.astype(np.float64) - r).max()), ATOL + RTOL * float(np.abs(r).max())
    print(f"{what} {a.shape}: max |diff| {err:.3g} (bound {bound:.3g}) {'ok' if err <= bound else 'FAIL'}")
    failures += err > bound

after = mapped()
def find(libs, name):
    """The path of `name` (a SONAME such as libbz2.so.1.0) in `libs`, also when the system's copy
    was mapped under its full file name (libbz2.so.1.0.4)."""
    hits = [p for b, p in libs.items() if b == name or b.startswith(name + ".")]
    return hits[0] if hits else None
for name in sorted(os.listdir(native)):
    where = find(after, name)
    if where is None:
        print(f"FAIL: {name} is bundled but was not loaded"); failures += 1
    elif pathlib.Path(where).resolve().parent != native:
        if find(before, name):  # the process had it already (e.g. Python's _bz2 loads libbz2)
            print(f"note: {name} was already loaded from {where} before libtransface")
        else:
            print(f"FAIL: {name} loaded from {where}, not from the wheel"); failures += 1
bad = sorted(p for p in after.values() if p.startswith(toolchain + "/") or
             os.path.basename(p).startswith(("libswift", "libFoundation", "libdispatch")))
for p in bad:
    print(f"FAIL: Swift library loaded: {p}"); failures += 1
print(f"{len(os.listdir(native))} bundled libraries loaded from {native}" if not failures else f"{failures} failure(s)")
sys.exit(1 if failures else 0)
EOF

echo "== smoke test: env -i PATH=/usr/bin:/bin HOME=$HOME (no TRANSFACE_LIBRARY, no LD_LIBRARY_PATH)"
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are kept when set (OpenBLAS may need them on this CPU)
clean="env -i PATH=/usr/bin:/bin HOME=$HOME${OPENBLAS_CORETYPE:+ OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE}${OPENBLAS_L2_SIZE:+ OPENBLAS_L2_SIZE=$OPENBLAS_L2_SIZE}"
$clean "$venv/bin/python" "$tmp/smoke.py" "$refdir" "$tmp" "$toolchain" || die "smoke test"

lib=$(ls "$venv"/lib/python*/site-packages/transface/_native/libtransface.so)
echo "== ldd $lib"
$clean ldd "$lib" > "$tmp/ldd.txt" || die "ldd failed: $(cat "$tmp/ldd.txt")"
sed 's/^/    /' "$tmp/ldd.txt"
if grep -E 'libswift|libFoundation|libdispatch|not found' "$tmp/ldd.txt" || grep -F "$toolchain/" "$tmp/ldd.txt"; then
    die "the bundled library needs Swift or misses a library"
fi
echo
echo "wheel OK: $(basename "$wheel"), $size bytes ($((size / 1024 / 1024)) MiB)"
