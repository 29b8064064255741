#!/usr/bin/env bash
# Distributed training under Open MPI on this machine (loopback / shared memory only): runs the
# checks of Tests/MPICheck (the TFMPICheck product) under mpirun and ends with one line
# "mpi: N passed, M failed". About 30 s on 2 cores.
#
# World-2 gradient tolerance (normwise relative per tensor, 1e-5): the loss, the softmax
# denominators and the centre gradients come out bitwise equal to one process with batch 2B;
# what differs is the embedding gradient dx̂ = Σ_c G'_bc W_c, summed over 24 classes in one
# float32 GEMM in one process and as two 12-class GEMMs added by the allreduce over 2 ranks:
# |error| ≤ γ_24 · Σ_c |G'_bc||W_c| with γ_24 ≈ 24 · 2⁻²⁴ ≈ 1.4e-6; the backward through the
# backbone is linear in dx̂, and the normalisations' cancellations amplify it a few times
# (measured ≤ 4.6e-6). Tensors whose exact gradient is zero (a bias under a later training-mode
# BatchNorm) are instead checked to be below 1e-5 of the whole gradient's norm.
#
#   Tests/MPI/run.sh        (builds TFMPICheck first when needed)
set -uo pipefail
cd "$(dirname "$0")/../.."
command -v mpirun >/dev/null || { echo "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"; echo "mpi: 0 passed, 1 failed"; exit 1; }
for product in TFMPICheck transface-cli transface; do
    swift build --product $product >/dev/null || { echo "cannot build $product"; echo "mpi: 0 passed, 1 failed"; exit 1; }
done
check=.build/debug/TFMPICheck
# As root in a container Open MPI needs both variables; vader = shared memory, self = loopback.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { local n=$1; shift; timeout 300 mpirun -np "$n" --oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader "$check" "$@"; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0; failed=0
run() {
    local name=$1; shift
    local start=$SECONDS
    if "$@" > "$work/out" 2>&1; then
        passed=$((passed + 1)); grep '^ok:' "$work/out" || echo "ok: $name"
        echo "   ($name: $((SECONDS - start)) s)"
    else
        failed=$((failed + 1)); echo "FAIL: $name"; tail -20 "$work/out"
    fi
}
run "world 1 = one process" mpi 1 world1
run "world 2 = batch 2B (EHSM official)" mpi 2 gradients
run "world 2 = batch 2B (EHSM paper)" mpi 2 gradients paper
run "repeatable" mpi 2 repeat
mkdir -p "$work/ckpt"
run "checkpoint at world 2, resume at 2" mpi 2 checkpoint "$work/ckpt"
run "world-2 checkpoint in one process" "$check" resume1 "$work/ckpt"
run "one-process checkpoint over 2 ranks" mpi 2 resume2 "$work/ckpt"
run "divergence detected" mpi 2 diverge

# One rank SIGKILLed at step 5: the job must end non-zero well within the bound (mpirun
# notices the dead process and ends the others), and the last complete checkpoint must load —
# a shard of a later step without its manifest (as a crash mid-save leaves) is not taken.
mkdir -p "$work/kill"
killed() {
    local start end
    start=$(date +%s)
    timeout 60 mpirun -np 2 --oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader "$check" kill "$work/kill"
    local rc=$? end=$(date +%s)
    echo "job ended with status $rc after $((end - start)) s"
    [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || return 1
    head -c 1000 /dev/urandom > "$work/kill/killed.tfc.step6.rank0"
    "$check" loadlast "$work/kill"
}
run "rank killed: job ends, last checkpoint loads" killed
grep -h "job ended\|exited on signal" "$work/out" | head -2

# The command line: 4 steps over 2 ranks of a tiny model on the LFW demo data (rank 0 logs, every
# rank writes its shard), then the run resumed in one process without the "distributed" block.
cli() {
    local out="$work/cli" set=(--set trainer.distributed.backend=mpi --set trainer.batch_size=8 --set trainer.threads=1
        --set trainer.model.depth=1 --set trainer.model.embed_dim=32 --set trainer.model.mlp_hidden_dim=64
        --set checkpoint_every=2 --set log_every=1 --set data.threads=1)
    timeout 300 mpirun -np 2 --oversubscribe --bind-to none --mca pml ob1 --mca btl self,vader .build/debug/transface-cli \
        train --config lfw_demo "${set[@]}" --output "$out" --stop-after 4 --plain-progress || return 1
    [ -f "$out/checkpoints/step-00000004.tfc.step4.rank1" ] && [ "$(grep -c '"event":"step"' "$out/train.jsonl")" -eq 4 ] || return 1
    .build/debug/transface-cli train --resume "$out/checkpoints/step-00000004.tfc" --set trainer.distributed=null --stop-after 5 --plain-progress > "$work/resumed" || return 1
    grep -q 'step 5: checkpoint' "$work/resumed" || return 1
    echo "ok: mpirun -np 2 transface train (4 steps, 2 shards per checkpoint, one log), resumed in one process"
}
[ -d ../shared/data/lfw ] && run "transface train under mpirun" cli

# The Python binding (libtransface.so loading Open MPI itself): both ranks report the same losses.
python_ranks() {
    TRANSFACE_LIBRARY="$PWD/.build/debug/libtransface.so" timeout 120 mpirun -np 2 --oversubscribe --bind-to none \
        --mca pml ob1 --mca btl self,vader python3 Tests/MPI/python_two_ranks.py "$work/py" || return 1
    [ -s "$work/py.0" ] && cmp "$work/py.0" "$work/py.1" || return 1
    echo "ok: the Python Trainer with a distributed block trains over 2 ranks (identical losses and norms, checksum every step)"
}
python3 -c "import numpy" 2>/dev/null && run "python binding under mpirun" python_ranks

echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
