"""Train a small TransFace on the LFW training identities of ../shared/data/lfw and evaluate it
on the official View-1 test pairs (identities disjoint from training), next to the raw-pixel
baseline. Everything goes through libtransface: decoding, 5-point alignment, the trainer (DPAP,
EHSM, ArcFace), export, and the 10-fold verification (interleaved folds: the devtest file lists
500 same pairs then 500 different ones, see ../shared/data/README.md).

    python3 bindings/python/examples/train_lfw.py --data ../shared/data/lfw --out out/demo --minutes 3
"""

import argparse
import csv
import json
import os
import time

import numpy as np

import transface


def landmarks_table(path):
    """path -> 5x2 landmarks, preferring the hand-annotated CUHK points when present."""
    table = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            pts = np.array([[float(row[f"{k}_x"]), float(row[f"{k}_y"])]
                            for k in ("leye", "reye", "nose", "lmouth", "rmouth")], dtype=np.float32)
            if row["path"] not in table or row["source"] == "cuhk_manual":
                table[row["path"]] = pts
    return table


def aligned(data, rel, marks):
    return transface.align_face(transface.decode_image(os.path.join(data, rel)), marks[rel])[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../../../shared/data/lfw"))
    ap.add_argument("--out", default="out/demo")
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    marks = landmarks_table(os.path.join(args.data, "landmarks/included_5pt.tsv"))

    t0 = time.time()
    with open(os.path.join(args.data, "splits/train.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    images = np.stack([aligned(args.data, r["path"], marks) for r in rows])
    labels = np.array([int(r["label"]) for r in rows], dtype=np.int32)
    classes = int(labels.max()) + 1
    print(f"decoded and aligned {len(images)} training faces of {classes} identities in {time.time() - t0:.1f} s")

    config = {"arch": "custom", "model": {"embed_dim": 96, "depth": 4, "num_heads": 4, "mlp_hidden_dim": 384},
              "embedding_size": 128, "mask_ratio": 0.1, "drop_path_rate": 0.05, "num_classes": classes,
              "batch_size": 32, "threads": args.threads, "seed": 7,
              "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.05},
              "schedule": {"warmup_steps": 20, "max_steps": 100000}}
    trainer = transface.Trainer(config)
    rng = np.random.default_rng(0)
    start, step, losses = time.time(), 0, []
    while time.time() - start < args.minutes * 60:
        order = rng.permutation(len(images))
        for i in range(0, len(order) - 31, 32):
            idx = order[i:i + 32]
            batch = images[idx]
            flip = rng.random(32) < 0.5
            batch[flip] = batch[flip, :, ::-1]
            r = trainer.step(np.ascontiguousarray(batch), labels[idx])
            losses.append(r["loss"])
            step += 1
            if step % 25 == 0:
                print(f"step {step:5d}  loss {np.mean(losses[-25:]):7.3f}  lr {r['learning_rate']:.2e}  "
                      f"{32 / r['seconds']:5.1f} images/s", flush=True)
            if time.time() - start >= args.minutes * 60:
                break
    model_path = os.path.join(args.out, "lfw_transface.tfm")
    model = trainer.export_model(model_path)
    print(f"trained {step} steps ({step * 32} images) in {time.time() - start:.0f} s -> {model_path}")

    pairs = os.path.join(args.data, "splits/devtest_pairs.tsv")
    result = model.evaluate_pairs(pairs, args.data, os.path.join(args.data, "landmarks/included_5pt.tsv"),
                                  interleaved=True, threads=args.threads)
    with open(pairs, newline="") as f:
        prs = list(csv.DictReader(f, delimiter="\t"))
    faces = {p: aligned(args.data, p, marks).astype(np.float32).ravel()
             for p in {r["path1"] for r in prs} | {r["path2"] for r in prs}}
    raw = transface.verify(np.stack([faces[r["path1"]] for r in prs]), np.stack([faces[r["path2"]] for r in prs]),
                           np.array([r["same"] == "1" for r in prs]), interleaved=True)
    summary = {"steps": step, "images_seen": step * 32,
               "transface_accuracy": result.accuracy, "transface_std": result.accuracy_std,
               "raw_pixel_accuracy": raw.accuracy, "raw_pixel_std": raw.accuracy_std}
    with open(os.path.join(args.out, "lfw_view1.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(f"LFW View-1 test pairs (1000, interleaved 10 folds, flip-TTA): TransFace "
          f"{100 * result.accuracy:.2f} ± {100 * result.accuracy_std:.2f} %   raw pixels "
          f"{100 * raw.accuracy:.2f} ± {100 * raw.accuracy_std:.2f} %")


if __name__ == "__main__":
    main()
