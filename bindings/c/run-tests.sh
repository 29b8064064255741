#!/bin/sh
# Builds and runs the C binding tests against libtransface.so:
#   example.c      compiled (-std=c99 -Wall -Wextra -pedantic -Werror) and run on the reference model
#   test_abi.c     every function and error path of include/transface.h
#   test_parity.c  parity with the official PyTorch outputs, model built from the reference .npy files
#   test_cxx.cpp   the header compiled as C++17 (-Wall -Wextra -pedantic -Werror)
#   test_crash.c   kill -9 while checkpointing: the checkpoint always loads and resumes bit for bit;
#                  failed writes (file size limit, unwritable folder) keep the previous file
#   test_struct_evolution.c  every struct as released (struct_v1.h) and smaller/larger, behind guard
#                  pages: params_init, reading and writing only struct_size bytes, refusals
#   test_detect.c  face detection: MTCNN on LFW photos through the ABI, face arrays, embed_photo
#   test_gallery.c the 1:N gallery through the ABI
#   test_handles.c a handle of another type, a freed one, garbage: errors, never a crash
#   test_precision.c  precision values; bf16 runs (close to float32) or is refused
#   test_robust.c  finite unit-length embeddings of black, white and noise images; "reduce_lr"
#   test_convert.c transface_convert_state_dict / _infer_config: an .npz written in C converts to its
#                  tensors; NULLs, struct_size rules, bad options, garbage and truncated files refused
#
# Environment:
#   TRANSFACE_LIBRARY_DIR   folder of libtransface.so (default: <repo>/.build/debug; relative to the repo)
#   TRANSFACE_REFERENCE_DIR reference data (default: <repo>/../shared/reference/tiny)
#   TRANSFACE_PARITY_MODEL  a .tfm converted from that reference (python3 -m transface convert):
#                           also checked by test_parity when set
#   TRANSFACE_VALGRIND=1    also run test_abi, test_parity, example, test_cxx, test_image, test_train,
#                           test_data_eval, test_ijb and test_convert under valgrind memcheck: no invalid access,
#                           no definite leak (the Swift runtime keeps caches that show as possibly
#                           lost); =all adds test_robust and test_stress (over 15 min each). Not
#                           test_crash: its children are SIGKILLed by design
#   TRANSFACE_STRESS_SECONDS test_stress duration (default 30); TRANSFACE_VALGRIND_STRESS_SECONDS
#                           its duration under valgrind (default 3)
#   TRANSFACE_TEST_NOFORK=1 test_abi runs its sections in one process (sanitizer leak checks see all)
#   TRANSFACE_CRASH_KILLS   kills in test_crash (default 24); TRANSFACE_CRASH_SEED seeds their timing
#   TRANSFACE_C_BUILD_DIR   where test programs and logs go (default bindings/c/build; relative to the repo)
#   CC, CXX                 compilers (default cc, c++)
# Exits non-zero when anything fails.
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
libdir=${TRANSFACE_LIBRARY_DIR:-.build/debug}
case $libdir in /*) ;; *) libdir="$repo/$libdir" ;; esac
refdir=${TRANSFACE_REFERENCE_DIR:-"$repo/../shared/reference/tiny"}
build=${TRANSFACE_C_BUILD_DIR:-"$here/build"}
case $build in /*) ;; *) build="$repo/$build" ;; esac
CC=${CC:-cc}
CXX=${CXX:-c++}
cflags="-std=c99 -Wall -Wextra -pedantic -Werror -I $repo/include"
cxxflags="-std=c++17 -Wall -Wextra -pedantic -Werror -I $repo/include"
link="-L $libdir -ltransface -Wl,-rpath,$libdir"

if [ ! -f "$libdir/libtransface.so" ]; then
    echo "no $libdir/libtransface.so: run 'swift build' in $repo or set TRANSFACE_LIBRARY_DIR" >&2
    exit 2
fi
mkdir -p "$build"
failures=0
results=""

step() {  # step NAME COMMAND...: runs a command, records the outcome
    name=$1
    shift
    echo "== $name"
    if "$@"; then
        results="$results
  ok    $name"
    else
        results="$results
  FAIL  $name"
        failures=$((failures + 1))
    fi
}

step "compile example.c" $CC $cflags -o "$build/example" "$here/example.c" $link
step "compile test_abi.c" $CC $cflags -o "$build/test_abi" "$here/test_abi.c" $link -lm -lpthread
step "compile test_parity.c" $CC $cflags -o "$build/test_parity" "$here/test_parity.c" $link -lm
step "compile test_cxx.cpp (C++17)" $CXX $cxxflags -o "$build/test_cxx" "$here/test_cxx.cpp" $link

step "test_abi" "$build/test_abi"
if [ -d "$refdir" ]; then
    step "test_parity --from-reference $refdir" "$build/test_parity" --from-reference "$refdir" --save "$build/reference.tfm"
    if [ -n "${TRANSFACE_PARITY_MODEL:-}" ]; then
        step "test_parity $TRANSFACE_PARITY_MODEL" "$build/test_parity" "$TRANSFACE_PARITY_MODEL" "$refdir"
    fi
    step "example (reference model, synthetic images)" "$build/example" "$build/reference.tfm"
else
    echo "== SKIP parity and example: no reference data at $refdir (set TRANSFACE_REFERENCE_DIR)"
    results="$results
  SKIP  test_parity (no $refdir)"
fi
step "test_cxx" "$build/test_cxx"
step "test_image (decoding, alignment; parity with ../shared/reference/align)" sh -c "$CC $cflags -o '$build/test_image' '$here/test_image.c' $link -lm && '$build/test_image' '$repo/../shared'"
step "test_train (trainer: steps, checkpoint and exact resume, errors)" sh -c "$CC $cflags -o '$build/test_train' '$here/test_train.c' $link -lm && '$build/test_train'"
step "test_crash (kill -9 during checkpointing ${TRANSFACE_CRASH_KILLS:-24} times, resume equality; disk full, unwritable folders)" sh -c "$CC $cflags -o '$build/test_crash' '$here/test_crash.c' $link && '$build/test_crash'"
step "test_struct_evolution (every struct as released, behind guard pages; params_init; newer and too small sizes)" sh -c "$CC $cflags -o '$build/test_struct_evolution' '$here/test_struct_evolution.c' $link && '$build/test_struct_evolution' '$build/reference.tfm'"
step "test_handles (a handle of another type, freed twice or used after free)" sh -c "$CC $cflags -o '$build/test_handles' '$here/test_handles.c' $link && '$build/test_handles' '$build/reference.tfm'"
step "test_precision (precision values; bf16 against float32)" sh -c "$CC $cflags -o '$build/test_precision' '$here/test_precision.c' $link -lm && '$build/test_precision' '$build/reference.tfm'"
step "test_robust (finite unit embeddings of black, white and noise images; non_finite reduce_lr)" sh -c "$CC $cflags -o '$build/test_robust' '$here/test_robust.c' $link -lm && '$build/test_robust' '$build/reference.tfm'"
step "test_gallery (1:N gallery: enrol, search, remove, persistence, model guard, one writer, errors)" sh -c "$CC $cflags -o '$build/test_gallery' '$here/test_gallery.c' $link -lm && '$build/test_gallery' '$build/reference.tfm'"
wheel=${TRANSFACE_FACENET_WHEEL:-"$repo/.build-data/facenet_pytorch-2.6.0-py3-none-any.whl"}
cli="$libdir/transface-cli"; [ -x "$cli" ] || cli="$repo/.build/debug/transface-cli"
if [ -f "$wheel" ] && [ -x "$cli" ]; then
    step "test_detect (MTCNN through the ABI: LFW and dogs.jpg, BGR, face arrays, embed_photo, errors)" sh -c "'$cli' convert-detector --facenet-wheel '$wheel' -o '$build/mtcnn.tfd' >/dev/null && $CC $cflags -o '$build/test_detect' '$here/test_detect.c' $link -lm && '$build/test_detect' '$build/mtcnn.tfd' '$build/reference.tfm' '$repo/../shared'"
else
    echo "== SKIP test_detect: no facenet-pytorch wheel at $wheel (bash .ci/setup downloads it) or no $cli"
    results="$results
  SKIP  test_detect (no $wheel)"
fi
step "test_convert (official state_dict converter: conversion, params, refusals)" sh -c "$CC $cflags -o '$build/test_convert' '$here/test_convert.c' $link && '$build/test_convert'"
step "test_stress (8 threads sharing a model, ${TRANSFACE_STRESS_SECONDS:-30} s; concurrent load/free)" sh -c "$CC $cflags -o '$build/test_stress' '$here/test_stress.c' $link -lm -lpthread && '$build/test_stress'"
step "test_data_eval (datasets, evaluation; parity with ../shared/reference/verification)" sh -c "$CC $cflags -o '$build/test_data_eval' '$here/test_data_eval.c' $link -lm && '$build/test_data_eval' '$repo/../shared'"
step "test_ijb (IJB-C 1:1 evaluation of a model against the protocol by hand, errors)" sh -c "$CC $cflags -o '$build/test_ijb' '$here/test_ijb.c' $link -lm && '$build/test_ijb'"

valgrind_all=0
[ "${TRANSFACE_VALGRIND:-0}" = all ] && valgrind_all=1
if [ "${TRANSFACE_VALGRIND:-0}" = 1 ] || [ "$valgrind_all" = 1 ]; then
    if command -v valgrind >/dev/null 2>&1; then
        # valgrind 3.19 cannot read the DWARF 5 debug info of Swift's clang ("unhandled dwarf2
        # abbrev form code 0x25 ... Giving up"): run against a copy without debug info.
        vglib="$build/valgrind-lib"
        mkdir -p "$vglib"
        objcopy --strip-debug "$libdir/libtransface.so" "$vglib/libtransface.so"
        vg="valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --error-exitcode=1"
        valgrind_run() {  # valgrind_run LOG COMMAND...: fails on test failures or memcheck errors
            log=$1
            shift
            LD_LIBRARY_PATH="$vglib" $vg --log-file="$log.%p" "$@"
            status=$?
            cat "$log".* > "$log"
            rm -f "$log".*
            errors=$(grep -c 'ERROR SUMMARY: [1-9]' "$log")
            lost=$(grep -c 'definitely lost: [1-9]' "$log")
            echo "memcheck: $(grep -c 'ERROR SUMMARY' "$log") process(es), $errors with memcheck errors," \
                 "$lost with definite leaks; test exit status $status (log: $log)"
            grep -h -E 'definitely lost:|possibly lost:' "$log" | sed 's/^==[0-9]*== *//' | sort | uniq -c |
                sed 's/^/  /'   # processes per line
            [ "$status" = 0 ] && [ "$errors" = 0 ]
        }
        step "valgrind test_abi" valgrind_run "$build/valgrind-test_abi.log" "$build/test_abi"
        if [ -d "$refdir" ]; then
            step "valgrind test_parity" valgrind_run "$build/valgrind-test_parity.log" \
                "$build/test_parity" --from-reference "$refdir"
            step "valgrind example" valgrind_run "$build/valgrind-example.log" "$build/example" "$build/reference.tfm"
        fi
        step "valgrind test_cxx" valgrind_run "$build/valgrind-test_cxx.log" "$build/test_cxx"
        step "valgrind test_image" valgrind_run "$build/valgrind-test_image.log" "$build/test_image" "$repo/../shared"
        step "valgrind test_train" valgrind_run "$build/valgrind-test_train.log" "$build/test_train"
        step "valgrind test_data_eval" valgrind_run "$build/valgrind-test_data_eval.log" "$build/test_data_eval" "$repo/../shared"
        step "valgrind test_ijb" valgrind_run "$build/valgrind-test_ijb.log" "$build/test_ijb"
        step "valgrind test_convert" valgrind_run "$build/valgrind-test_convert.log" "$build/test_convert"
        if [ "$valgrind_all" = 1 ]; then
            # over 15 minutes each under memcheck: full-size vit_t forward passes; the stress
            # test's single-threaded reference run and 10 threads that valgrind serialises
            step "valgrind test_robust" valgrind_run "$build/valgrind-test_robust.log" "$build/test_robust" "$build/reference.tfm"
            TRANSFACE_STRESS_SECONDS=${TRANSFACE_VALGRIND_STRESS_SECONDS:-3}
            export TRANSFACE_STRESS_SECONDS
            step "valgrind test_stress ($TRANSFACE_STRESS_SECONDS s)" valgrind_run "$build/valgrind-test_stress.log" "$build/test_stress"
        fi
    else
        echo "== SKIP valgrind: not installed"
        results="$results
  SKIP  valgrind (not installed)"
    fi
fi

echo
echo "summary ($libdir/libtransface.so):$results"
[ "$failures" = 0 ]
