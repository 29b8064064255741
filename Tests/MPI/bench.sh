#!/usr/bin/env bash
# Measures distributed training on this machine (loopback / shared memory; a benchmark, not a
# test): per-step seconds and bytes of every collective and the throughput, np 1 and np 2
# alternating (one trainer thread per rank), for ARCH (default vit_t) at BATCH images per rank.
# Unsets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE for its own runs only.
#
#   Tests/MPI/bench.sh [ARCH] [BATCH] [CLASSES] [STEPS] [ROUNDS]
set -eu
cd "$(dirname "$0")/../.."
arch=${1:-vit_t} batch=${2:-16} classes=${3:-1000} steps=${4:-6} rounds=${5:-2}
swift build -c release --product TFMPIBench >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
lscpu | grep 'Model name'
for round in $(seq "$rounds"); do
    for np in 1 2; do
        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE mpirun -np "$np" --bind-to none --mca pml ob1 --mca btl self,vader \
            .build/release/TFMPIBench "$arch" "$batch" "$classes" "$steps"
    done
done
