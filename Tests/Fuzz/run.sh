#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer + AddressSanitizer) of every parser of outside input.
#
#   Tests/Fuzz/run.sh HARNESS [SECONDS]    one harness (default 600 s)
#   Tests/Fuzz/run.sh all [SECONDS]        every harness, one after the other
#   Tests/Fuzz/run.sh build                only build .build-fuzz/release/transface-fuzz
#
# Harnesses: model checkpoint image recordio pickle text config torch gallery hnsw (Sources/TransFaceFuzzHarness).
# Builds the instrumented binary into .build-fuzz (never .build), seeds each corpus from
# generated files (transface-fuzz seeds) and from ../shared (symlinked, never copied), keeps the
# growing corpus in .build-fuzz/corpus/HARNESS, crashes in .build-fuzz/artifacts/HARNESS, the log
# in .build-fuzz/logs/HARNESS.log, and prints executions and coverage from libFuzzer's final
# stats (also appended to .build-fuzz/summary.tsv). One fuzzing process at a time, niced.
# A crash found here: fix it, then keep the input in Tests/Fuzz/regressions/HARNESS/ (replayed by
# `swift test --filter TransFaceFuzzTests` and by `transface-fuzz HARNESS FILE...`).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SHARED=${TRANSFACE_SHARED:-$ROOT/../shared}
OUT=$ROOT/.build-fuzz
BIN=$OUT/release/transface-fuzz
HARNESSES=(model checkpoint image recordio pickle text config torch gallery hnsw)
what=${1:?usage: Tests/Fuzz/run.sh HARNESS|all|build [SECONDS]}
seconds=${2:-600}

build() {
    # -sanitize=fuzzer,address in one flag: given as two flags, swiftc keeps only the last one
    # (no coverage). lld: gold fails to link the instrumented objects.
    nice -n 10 swift build --scratch-path "$OUT" -c release \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld \
        --product transface-fuzz >&2
}

# Symlinks the files of ../shared matching a find expression (at most N of them) into DIR.
link_shared() {
    local dir=$1 n=$2; shift 2
    [ -d "$SHARED" ] || return 0
    find "$SHARED" "$@" -type f -print 2>/dev/null | sort | head -n "$n" | while read -r f; do
        ln -sf "$f" "$dir/shared_$(echo "${f#$SHARED/}" | tr '/' '_')"
    done || true  # head closing the pipe early is not an error
}

seed() {
    local h=$1 dir=$OUT/seeds/$1
    rm -rf "$dir"; mkdir -p "$dir"
    "$BIN" seeds "$h" "$dir" >&2
    case $h in
    image)
        link_shared "$dir" 12 -path '*/lfw/images/*' -name '*.jpg' -size -64k
        link_shared "$dir" 6 -path '*/orl_faces/*' -name '*.pgm'
        link_shared "$dir" 8 -path '*/photos_misc/*' -size -64k
        ;;
    text)
        link_shared "$dir" 40 \( -name '*.txt' -o -name '*.tsv' \) -path '*/data/*'
        ;;
    pickle)
        # pickles as Python writes them (every protocol; numpy arrays when numpy is there)
        python3 - "$dir" <<'PY' >&2 || echo "python3 pickles skipped" >&2
import pickle, sys
d = sys.argv[1]
bins = [b"\xff\xd8\xff\xe0jpeg", b"", b"x" * 300, bytes(range(256))]
same = [True, False]
for p in range(0, 6):
    open(f"{d}/py_bytes{p}.bin", "wb").write(pickle.dumps((bins, same), protocol=p))
    open(f"{d}/py_bytearray{p}.bin", "wb").write(pickle.dumps(([bytearray(b) for b in bins], same), protocol=p))
try:
    import numpy as np
except ImportError:
    sys.exit(0)
for p in range(2, 6):
    arrays = [np.frombuffer(b, dtype=np.uint8).copy() for b in bins]
    open(f"{d}/py_numpy{p}.bin", "wb").write(pickle.dumps((arrays, np.array(same)), protocol=p))
    open(f"{d}/py_numpy_i1_{p}.bin", "wb").write(pickle.dumps(([a.view(np.int8).reshape(-1, 1) for a in arrays], [np.bool_(s) for s in same]), protocol=p))
PY
        ;;
    torch)
        # a real legacy file: facenet-pytorch's pnet.pt (28 KB) when its wheel is at hand
        local wheel=${TRANSFACE_FACENET_WHEEL:-/tmp/fnp/facenet_pytorch-2.6.0-py3-none-any.whl}
        [ -f "$wheel" ] && python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("facenet_pytorch/data/pnet.pt"))' \
            "$wheel" >"$dir/facenet_pnet.pt" || rm -f "$dir/facenet_pnet.pt"
        ;;
    esac
}

fuzz() {
    local h=$1 maxlen rss=2048 dict=()
    case $h in
    model | checkpoint) maxlen=32768 ;;
    image | pickle | torch) maxlen=65536 ;;
    recordio | gallery | hnsw) maxlen=16384 ;;
    text | config) maxlen=8192 ;;
    esac
    [ -f "$ROOT/Tests/Fuzz/dicts/$h.dict" ] && dict=(-dict="$ROOT/Tests/Fuzz/dicts/$h.dict")
    seed "$h"
    local corpus=$OUT/corpus/$h artifacts=$OUT/artifacts/$h log=$OUT/logs/$h.log
    mkdir -p "$corpus" "$artifacts" "$OUT/logs"
    echo "fuzzing $h for $seconds s (max_len $maxlen, rss limit $rss MB); log: $log" >&2
    local status=0
    local scratch=/dev/shm/transface-fuzz-$h-$$
    [ -w /dev/shm ] || scratch=${TMPDIR:-/tmp}/transface-fuzz-$h-$$
    (cd "$OUT" && TRANSFACE_FUZZ_SCRATCH=$scratch TRANSFACE_FUZZ_HARNESS=$h nice -n 10 "$BIN" "$corpus" "$OUT/seeds/$h" "${dict[@]}" \
        -max_total_time="$seconds" -max_len="$maxlen" -rss_limit_mb=$rss -malloc_limit_mb=$rss -timeout=20 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" -close_fd_mask=1 >"$log" 2>&1) || status=$?
    rm -rf "$scratch"
    local done_line execs rate cov ft corp crashes
    done_line=$(grep -E '^#[0-9]+.*(DONE|cov:)' "$log" | tail -n 1 || true)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    cov=$(echo "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$done_line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$done_line" | sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
    crashes=$(ls "$artifacts" | wc -l)
    printf '%s\t%s s\texecs %s\t%s exec/s\tcov %s\tft %s\tcorpus %s\tartifacts %s\texit %s\n' \
        "$h" "$seconds" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$crashes" "$status" | tee -a "$OUT/summary.tsv"
    if [ "$status" -ne 0 ]; then
        grep -E 'ERROR|SUMMARY|Fatal error|Test unit written' "$log" | head -n 8 >&2 || true
    fi
    return 0
}

build
case $what in
build) ;;
all) for h in "${HARNESSES[@]}"; do fuzz "$h"; done ;;
*) [[ " ${HARNESSES[*]} " == *" $what "* ]] || { echo "unknown harness '$what'" >&2; exit 2; }; fuzz "$what" ;;
esac
