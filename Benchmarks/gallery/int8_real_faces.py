"""float16 and int8 gallery storage against float32 on real face embeddings (LFW).

Every LFW photo of ../shared/data/lfw is aligned with its 5 `mtcnn_sphereface` landmarks
(landmarks/included_5pt.tsv) and embedded by MODEL (flip-summed, unit norm). For each identity
with two or more photos the last one is a query and the others are enrolled under its name;
identities with one photo are enrolled as distractors. The same enrolments go into a float32, a
float16 and an int8 gallery; the table is the top-10 identity recall of float16 and int8 against
float32 (the fraction of float32's top 10 labels found in the other's top 10), plus the rank-1
identification rate of each storage.

    python3 Benchmarks/gallery/int8_real_faces.py MODEL.tfm [--data ../shared/data/lfw] [--threads 2]
"""

import argparse
import collections
import csv
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import transface  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "lfw"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    landmarks = {}
    with open(os.path.join(a.data, "landmarks", "included_5pt.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["source"] == "mtcnn_sphereface":
                landmarks[row["path"]] = np.array([float(row[k]) for k in list(row)[2:]], np.float32).reshape(5, 2)
    paths = sorted(landmarks)
    model = transface.Model(a.model)
    start = time.perf_counter()
    embeddings = []
    for i in range(0, len(paths), 64):
        crops = np.stack([transface.align_face(transface.decode_image(os.path.join(a.data, p)), landmarks[p])[0] for p in paths[i:i + 64]])
        embeddings.append(model.embed(crops, flip=True, threads=a.threads))
    embeddings = np.concatenate(embeddings)
    print(f"{len(paths)} photos aligned + embedded in {time.perf_counter() - start:.0f} s")
    by_name = collections.defaultdict(list)
    for p, e in zip(paths, embeddings):
        by_name[p.split("/")[1]].append(e)
    queries, names = [], []
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        galleries = {s: transface.Gallery(os.path.join(tmp, f"{s}.tfg"), model, storage=s) for s in ("float32", "float16", "int8")}
        for name, embs in sorted(by_name.items()):
            enrol = embs[:-1] if len(embs) > 1 else embs
            if len(embs) > 1:
                queries.append(embs[-1]); names.append(name)
            for g in galleries.values():
                g.enrol(name, np.stack(enrol))
        q = np.stack(queries)
        top = {s: g.search(q, k=10, threshold=0.0) for s, g in galleries.items()}
        print(f"{len(galleries['float32'])} embeddings of {len(by_name)} identities enrolled; {len(q)} queries")
        print("| storage | top-10 recall vs float32 | rank-1 identification |")
        print("|---|---|---|")
        for s in ("float32", "float16", "int8"):
            recall = np.mean([len({m.label for m in a_} & {m.label for m in b_}) / len(a_) for a_, b_ in zip(top["float32"], top[s])])
            rank1 = np.mean([r[0].label == n for r, n in zip(top[s], names)])
            print(f"| {s} | {recall:.4f} | {rank1:.4f} |")
        for g in galleries.values():
            g.close()


if __name__ == "__main__":
    main()
