"""Photo in, identity out on LFW: faces are detected by the library's MTCNN (no landmarks given),
aligned and embedded by a trained model, enrolled in a gallery file and searched (1:N).

Two galleries, each with the first photo of every identity enrolled:
  seen    the 298 training identities (the model was trained on their photos); probes are their
          next photos, unknowns the View-1 test identities' photos;
  unseen  the View-1 test identities with at least two photos (never seen in training); probes
          are their other photos, unknowns photos of the training identities.
For each: rank-1 identification accuracy of the probes (top match is the right identity), the
share identified (right and above the threshold), and the open-set false accept rate (unknowns
whose top match passes the threshold). The threshold is the model's verification threshold at
FAR --far on the View-1 test pairs, read from the training run's TAR@FAR table.

    python3 bindings/python/examples/lfw_identify.py --model out/demo/lfw/model.tfm \\
        --detector out/demo/mtcnn.tfd --data ../shared/data/lfw \\
        --tar-csv out/demo/lfw/eval/lfw_view1_test_tar.csv --out out/demo/identify
"""

import argparse
import collections
import csv
import os
import sys
import time

import numpy as np

import transface


def threshold_at(tar_csv, far):
    with open(tar_csv) as f:
        for row in csv.DictReader(f):
            if abs(float(row["far"]) - far) <= 1e-12 * max(far, 1):
                return float(row["threshold"])
    sys.exit(f"{tar_csv} has no row for FAR {far}")


def photos_by_identity(data):
    """(training identities -> sorted paths, View-1 test identities -> sorted paths)."""
    train = collections.defaultdict(list)
    with open(os.path.join(data, "splits", "train.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            train[row["name"]].append(row["path"])
    test = collections.defaultdict(set)
    with open(os.path.join(data, "splits", "devtest_pairs.tsv")) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            for p in (row["path1"], row["path2"]):
                test[p.split("/")[1]].add(p)
    return ({k: sorted(v) for k, v in sorted(train.items())}, {k: sorted(v) for k, v in sorted(test.items())})


class Embedder:
    """Photo path -> unit embedding of its main face (None when no face is found)."""

    def __init__(self, model, detector, data):
        self.ctx, self.detector, self.data = model.context(), detector, data
        self.photos, self.no_face, self.seconds = 0, 0, 0.0

    def __call__(self, path):
        image = transface.decode_image(os.path.join(self.data, path))
        start = time.perf_counter()
        emb, _ = self.detector.embed_photo(self.ctx, image, flip=True)
        self.seconds += time.perf_counter() - start
        self.photos += 1
        self.no_face += emb is None
        return emb


def evaluate(name, gallery_path, model, embed, enrolled, probes_per_identity, unknown_photos, threshold):
    if os.path.exists(gallery_path):
        os.remove(gallery_path)
    with transface.Gallery(gallery_path, model) as g:
        for label, paths in enrolled.items():
            emb = embed(paths[0])
            if emb is not None:
                g.enrol(label, emb, {"photo": paths[0]})
        right = passed = probes = 0
        for label, paths in enrolled.items():
            for p in paths[1:1 + probes_per_identity]:
                emb = embed(p)
                if emb is None:
                    continue
                top = g.search(emb, k=1, threshold=threshold)[0]
                probes += 1
                right += top.label == label
                passed += top.label == label and top.passes
        accepted = unknowns = 0
        for p in unknown_photos:
            emb = embed(p)
            if emb is None:
                continue
            unknowns += 1
            accepted += g.search(emb, k=1, threshold=threshold)[0].passes
        print(f"  {name:7s} {len(g.identities())} identities enrolled; {probes} probes: rank-1 {100 * right / probes:.1f} %, "
              f"identified (right and >= threshold) {100 * passed / probes:.1f} %; {unknowns} unknown photos: "
              f"open-set false accepts {100 * accepted / unknowns:.1f} %")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--detector", required=True, help="detector file (transface convert-detector)")
    ap.add_argument("--data", required=True, help="the LFW folder of ../shared/data")
    ap.add_argument("--tar-csv", required=True, help="the training run's eval/<target>_tar.csv")
    ap.add_argument("--far", type=float, default=0.01)
    ap.add_argument("--probes", type=int, default=3, help="probe photos per enrolled identity (default 3)")
    ap.add_argument("--unknowns", type=int, default=400, help="unknown photos per gallery (default 400)")
    ap.add_argument("--out", required=True, help="folder for the gallery files")
    a = ap.parse_args()

    threshold = threshold_at(a.tar_csv, a.far)
    train, test = photos_by_identity(a.data)
    os.makedirs(a.out, exist_ok=True)
    model, detector = transface.Model(a.model), transface.Detector(a.detector)
    embed = Embedder(model, detector, a.data)
    print(f"  threshold {threshold:.4f} (cosine; the verification threshold at FAR {a.far:g} on the View-1 test pairs)")
    test_photos = [p for paths in test.values() for p in paths][:a.unknowns]
    train_photos = [p for paths in train.values() for p in paths[1 + a.probes:]][:a.unknowns]
    evaluate("seen", os.path.join(a.out, "seen.tfg"), model, embed, train, a.probes, test_photos, threshold)
    unseen = {k: v for k, v in test.items() if len(v) >= 2}
    evaluate("unseen", os.path.join(a.out, "unseen.tfg"), model, embed, unseen, a.probes, train_photos, threshold)
    print(f"  {embed.photos} photos detected + aligned + embedded in {embed.seconds:.1f} s "
          f"({1000 * embed.seconds / embed.photos:.1f} ms each), {embed.no_face} without a face")


if __name__ == "__main__":
    main()
