"""The TransFace ablation on LFW: the same small ViT trained with the same budget and seeds on the
298 LFW training identities (the shipped `lfw_demo` run configuration), each variant evaluated on
the 1,000 official View-1 test pairs (identities disjoint from training, interleaved folds,
flip-summed embeddings), next to the raw-pixel baseline (cosine of the aligned crops).

Variants: plain ViT (no SE module, no DPAP, no EHSM), +DPAP (needs the SE module that ranks the
patches), +EHSM (official detached weights), +EHSM (paper: gradient through the weights), and
full TransFace (SE + DPAP + official EHSM). Every training goes through the `transface` CLI.

    python3 bindings/python/examples/lfw_ablation.py --cli .build/release/transface-cli \\
        --epochs 3 --seeds 1,2 --out out/ablation
    python3 bindings/python/examples/lfw_ablation.py --baseline-only     # raw pixels only

Prints a Markdown table and writes it with every number to OUT/ablation.{md,json}. Runs that
already finished (OUT/VARIANT-sSEED/model.tfm) are not repeated.
"""

import argparse
import csv
import json
import os
import re
import subprocess
import sys

import numpy as np

VARIANTS = [
    ("plain ViT", {"trainer.se_gate": "false", "trainer.dpap.enabled": "false", "trainer.ehsm.enabled": "false"}),
    ("+DPAP", {"trainer.dpap.enabled": "true", "trainer.ehsm.enabled": "false"}),
    ("+EHSM (official)", {"trainer.se_gate": "false", "trainer.dpap.enabled": "false", "trainer.ehsm.mode": "official"}),
    ("+EHSM (paper)", {"trainer.se_gate": "false", "trainer.dpap.enabled": "false", "trainer.ehsm.mode": "paper"}),
    ("TransFace (DPAP + EHSM)", {"trainer.dpap.enabled": "true", "trainer.ehsm.mode": "official"}),
]


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def view1_test_faces(data):
    """The View-1 test pairs and their aligned 112x112 RGB crops (uint8), keyed by path."""
    import transface
    marks = {}
    with open(os.path.join(data, "landmarks/included_5pt.tsv"), newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            pts = np.array([[float(row[f"{k}_x"]), float(row[f"{k}_y"])]
                            for k in ("leye", "reye", "nose", "lmouth", "rmouth")], dtype=np.float32)
            if row["path"] not in marks or row["source"] == "cuhk_manual":
                marks[row["path"]] = pts
    with open(os.path.join(data, "splits/devtest_pairs.tsv"), newline="") as f:
        pairs = list(csv.DictReader(f, delimiter="\t"))
    faces = {}
    for p in {r["path1"] for r in pairs} | {r["path2"] for r in pairs}:
        img = transface.decode_image(os.path.join(data, p))
        faces[p] = transface.align_face(img, marks[p])[0]
    return pairs, faces


def verify_pairs(pairs, vectors):
    """10-fold (interleaved) accuracy and std of the cosine of per-path vectors on the pairs."""
    import transface
    r = transface.verify(np.stack([vectors[x["path1"]] for x in pairs]), np.stack([vectors[x["path2"]] for x in pairs]),
                         np.array([x["same"] == "1" for x in pairs]), interleaved=True)
    return r.accuracy, r.accuracy_std


def raw_pixel_baseline(data):
    """10-fold accuracy of the cosine of aligned raw-pixel crops on the View-1 test pairs."""
    pairs, faces = view1_test_faces(data)
    return verify_pairs(pairs, {p: f.astype(np.float32).ravel() for p, f in faces.items()})


def compare_precisions(model_path, data, threads):
    """View-1 accuracy of a model's flip-summed embeddings in float32 and in bf16 (where the CPU
    has bf16 instructions), and the worst cosine between the two embeddings of a face."""
    import transface
    pairs, faces = view1_test_faces(data)
    paths = sorted(faces)
    batch = np.stack([faces[p] for p in paths])
    model = transface.Model(model_path)
    emb = {}
    for precision in ("fp32", "bf16"):
        try:
            ctx = transface.Context(model, threads=threads, max_batch=32, precision=precision)
        except transface.InvalidArgumentError as e:
            print(f"{precision}: not available here ({e})")
            continue
        emb[precision] = ctx.embed(batch, flip=True)
        acc, std = verify_pairs(pairs, dict(zip(paths, emb[precision])))
        print(f"{precision}: LFW View-1 {100 * acc:.2f} ± {100 * std:.2f} % ({len(paths)} faces, {len(pairs)} pairs)", flush=True)
    if len(emb) == 2:
        print(f"bf16 vs fp32: worst cosine {np.min(np.sum(emb['fp32'] * emb['bf16'], axis=1)):.7f}")


def final_eval(run_dir):
    """The last evaluation record of a run's train.jsonl, and the run's wall time."""
    last, start, end = None, None, None
    with open(os.path.join(run_dir, "train.jsonl")) as f:
        for line in f:
            rec = json.loads(line)
            if rec["event"] == "eval":
                last = rec
            if rec["event"] == "step":
                end = rec["elapsed_seconds"]
    return last, end


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.abspath(os.path.join(here, "../../.."))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=os.path.join(repo, ".build/release/transface-cli"))
    ap.add_argument("--data", default=os.path.join(repo, "../shared/data/lfw"), help="LFW folder for the raw-pixel baseline")
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(repo, "out/ablation"))
    ap.add_argument("--baseline-only", action="store_true")
    ap.add_argument("--compare-precisions", metavar="MODEL",
                    help="only evaluate MODEL on the test pairs in float32 and bf16, then stop")
    args = ap.parse_args()
    if args.compare_precisions:
        compare_precisions(args.compare_precisions, args.data, args.threads)
        return
    os.makedirs(args.out, exist_ok=True)

    raw_acc, raw_std = raw_pixel_baseline(args.data)
    print(f"raw pixels (cosine of aligned crops): {100 * raw_acc:.2f} ± {100 * raw_std:.2f} %", flush=True)
    if args.baseline_only:
        return

    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        for name, settings in VARIANTS:
            run_dir = os.path.join(args.out, f"{slug(name)}-s{seed}")
            if not os.path.exists(os.path.join(run_dir, "model.tfm")):
                cmd = [args.cli, "train", "--config", "lfw_demo", "--output", run_dir, "--plain-progress",
                       "--threads", str(args.threads), "--set", f"trainer.seed={seed}", "--set", f"epochs={args.epochs}",
                       "--set", "warmup_epochs=0.25", "--set", "checkpoint_every=0", "--set", "log_every=100"]
                for k, v in settings.items():
                    cmd += ["--set", f"{k}={v}"]
                print(f"== {name}, seed {seed}", flush=True)
                subprocess.run(cmd, check=True, cwd=repo)  # lfw_demo names ../shared/data/lfw from the repo
            rec, seconds = final_eval(run_dir)
            rows.append({"variant": name, "seed": seed, "accuracy": rec["accuracy"], "fold_std": rec["accuracy_std"],
                         "train_seconds": seconds})

    lines = ["| variant | LFW View-1 accuracy (%) | ± std over folds | ± std over seeds | per seed |",
             "| --- | --- | --- | --- | --- |",
             f"| raw pixels (no training) | {100 * raw_acc:.2f} | {100 * raw_std:.2f} | – | – |"]
    for name, _ in VARIANTS:
        mine = [r for r in rows if r["variant"] == name]
        accs = np.array([r["accuracy"] for r in mine])
        fold = np.mean([r["fold_std"] for r in mine])
        per_seed = ", ".join(f"{100 * a:.1f}" for a in accs)
        lines.append(f"| {name} | {100 * accs.mean():.2f} | {100 * fold:.2f} | {100 * accs.std(ddof=1) if len(accs) > 1 else 0:.2f} | {per_seed} |")
    table = "\n".join(lines)
    print(table)
    with open(os.path.join(args.out, "ablation.md"), "w") as f:
        f.write(table + "\n")
    with open(os.path.join(args.out, "ablation.json"), "w") as f:
        json.dump({"epochs": args.epochs, "seeds": seeds, "raw_pixels": {"accuracy": raw_acc, "fold_std": raw_std},
                   "runs": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
