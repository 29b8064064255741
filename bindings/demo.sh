#!/usr/bin/env bash
# The main job: set up, build the release library and the `transface` tool, convert the official
# TransFace weights of the reference model into a model file, embed the official inputs from
# Python, C and Rust and compare with the official PyTorch outputs, train the tiny model for 20
# steps from Rust, measure vit_s (official init)
# on this CPU, then train a small TransFace on the 298 LFW training identities with
# `transface train --config lfw_demo` (aligned on the fly; about 4 minutes on 2 cores) and test it
# on the official View-1 test pairs next to the raw-pixel baseline; show its SE patch map; then
# detect, enrol and identify LFW photos with the library's MTCNN and a 1:N gallery.
# DEMO_EPOCHS (default 12, the shipped config's) shortens or lengthens the training.
# Writes into out/demo ; reads ../shared (never copied).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
shared="$repo/../shared"
out="$repo/out/demo"
mkdir -p "$out"

bash .ci/setup
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores," \
    "$(grep -qw avx512f /proc/cpuinfo && echo AVX-512 || echo AVX2)$(grep -qw avx512_bf16 /proc/cpuinfo && echo ' + AVX512_BF16')"
echo "== building (release)"
swift build -c release --product transface 2>&1 | tail -1
swift build -c release --product transface-cli 2>&1 | tail -1
cli="$repo/.build/release/transface-cli"
lib="$repo/.build/release/libtransface.so"
export TRANSFACE_LIBRARY="$lib"
export PYTHONPATH="$repo/bindings/python${PYTHONPATH:+:$PYTHONPATH}"

echo "== converting the official tiny TransFace state_dict (reference/tiny/param) to a model file"
python3 - "$shared/reference/tiny/param" "$out/tiny_state_dict.npz" <<'PY'
import sys, pathlib, numpy as np
src, dst = pathlib.Path(sys.argv[1]), sys.argv[2]
np.savez(dst, **{p.stem: np.load(p) for p in sorted(src.glob("*.npy"))})
PY
python3 -m transface convert "$out/tiny_state_dict.npz" -o "$out/tiny.tfm" --num-heads 4
python3 -m transface info "$out/tiny.tfm" | head -12

echo "== embedding the official inputs and comparing with the official PyTorch outputs"
python3 - "$out/tiny.tfm" "$shared/reference/tiny" <<'PY'
import sys, numpy as np, transface
model, ref = transface.Model(sys.argv[1]), sys.argv[2]
images = np.load(f"{ref}/input/u8_hwc.npy")
emb = model.embed(images, normalize=False)
weights, std = model.patches(images)
for name, ours, theirs in [("embedding", emb, f"{ref}/eval/embedding.npy"),
                           ("SE patch weight", weights, f"{ref}/eval/se_weight_softmax.npy"),
                           ("patch std", std, f"{ref}/eval/patch_std.npy")]:
    r = np.load(theirs)
    print(f"  python  {name:16s} max|diff|/max|ref| = {np.abs(ours - r).max() / np.abs(r).max():.2e}")
unit = model.embed(images, flip=True)
print("  cosine similarity matrix of the 4 inputs (flip-TTA):")
print(np.array2string(unit @ unit.T, precision=3, prefix="  "))
PY
cc -std=c99 -O2 -I include bindings/c/test_parity.c -o "$out/test_parity" -L"$(dirname "$lib")" -ltransface -lm \
    -Wl,-rpath,"$(dirname "$lib")"
"$out/test_parity" "$out/tiny.tfm" "$shared/reference/tiny" | tail -4
echo "== Rust: parity with the official outputs, then 20 training steps of the tiny reference model"
(cd bindings/rust && export TRANSFACE_LIB_DIR="$(dirname "$lib")" CARGO_NET_OFFLINE=true &&
    cargo test --offline -q --test parity -- --nocapture --test-threads 1 embeddings_and_patches_match_the_reference &&
    cargo run --offline -q --example train_tiny)

echo "== vit_s (official initialisation, untrained) on this machine"
[ -f "$out/vit_s.tfm" ] || "$cli" bench make-model vit_s -o "$out/vit_s.tfm"
"$cli" bench load "$out/vit_s.tfm"
"$cli" bench embed "$out/vit_s.tfm" --threads 2 --batch 1,8 --seconds 5
echo "== training a small TransFace on the 298 LFW training identities, testing on the View-1 pairs"
start=$(date +%s)
"$cli" train --config lfw_demo --output "$out/lfw" --set "epochs=${DEMO_EPOCHS:-12}"
echo "  trained and evaluated in $(( $(date +%s) - start )) s"
python3 bindings/python/examples/lfw_ablation.py --baseline-only --data "$shared/data/lfw"
python3 bindings/python/examples/lfw_ablation.py --compare-precisions "$out/lfw/model.tfm" --data "$shared/data/lfw"
face=images/Abdullah_Gul/Abdullah_Gul_0013.jpg
"$cli" patches "$out/lfw/model.tfm" "$shared/data/lfw/$face" --landmarks "$shared/data/lfw/landmarks/included_5pt.tsv" \
    --root "$shared/data/lfw" -o "$out/lfw/patches.png"
echo "  ROC: $out/lfw/eval/roc.svg   model: $out/lfw/model.tfm   SE patch map: $out/lfw/patches.png"
echo "== photo in, identity out: MTCNN (facenet-pytorch's weights) + the trained model + a 1:N gallery"
"$cli" convert-detector --facenet-wheel "$repo/.build-data/facenet_pytorch-2.6.0-py3-none-any.whl" -o "$out/mtcnn.tfd"
python3 bindings/python/examples/lfw_identify.py --model "$out/lfw/model.tfm" --detector "$out/mtcnn.tfd" \
    --data "$shared/data/lfw" --tar-csv "$out/lfw/eval/lfw_view1_test_tar.csv" --out "$out/identify"
echo "== done: model files and results in $out"
