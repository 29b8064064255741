#!/usr/bin/env bash
# Builds and runs the matmul backend comparison (bench_matmul_backends.c): Debian OpenBLAS,
# the scipy-openblas32 wheel's newer OpenBLAS, oneDNN's matmul primitive (f32, bf16), libxsmm.
# Installs what it needs (root: apt-get, pip). Usage: bash bindings/c/bench-matmul-backends.sh [SECONDS]
# SECONDS is the time budget per measurement (default 0.3). OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are
# left as the environment has them; the table's header says which Debian OpenBLAS kernel ran.
set -euo pipefail
cd "$(dirname "$0")"
need=()
for p in libopenblas-dev libdnnl-dev libxsmm-dev; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; fi
python3 -c "import scipy_openblas32" 2>/dev/null || python3 -m pip install -q scipy-openblas32
new=$(python3 -c "import scipy_openblas32 as s, os; print(os.path.join(s.get_lib_dir(), 'libscipy_openblas.so'))")
out=${TMPDIR:-/tmp}/bench_matmul_backends
cc -O3 -march=x86-64-v3 -fopenmp -o "$out" bench_matmul_backends.c -I/usr/include/x86_64-linux-gnu/openblas-pthread \
    -lopenblas -ldnnl -lxsmm -lpthread -ldl -lm
SCIPY_OPENBLAS="$new" "$out" "${1:-0.3}"
# The same capped to AVX2 (what oneDNN 2.6 does on an AVX2-only CPU such as Zen 3):
#   DNNL_MAX_CPU_ISA=AVX2 LIBXSMM_TARGET=hsw bash bindings/c/bench-matmul-backends.sh
