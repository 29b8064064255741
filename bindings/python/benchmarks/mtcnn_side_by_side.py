#!/usr/bin/env python3
"""Speed of Sources/TFDetect against facenet-pytorch 2.6.0's MTCNN.detect, side by side.

Workloads: one LFW photo (250 × 250) and a 1280 × 720 frame (a dlib example group photo tiled,
wrapping around, to 1280 × 720: the same pixels on both sides). For each thread count, ours runs
in a TFDetectBench `serve` process (FaceDetector with that many workers, default options, timed
in-process) and facenet-pytorch here with torch.set_num_threads(n); rounds ALTERNATE between the
two (the order flips every round, so drift and neighbours' load hit both alike). A round times
--reps calls after warm-up; the result is the median ms per call over the rounds.

torchvision (batched_nms) has no wheel for torch 2.13 here, so facenet-pytorch runs with
mtcnn_reference.py's numpy re-implementation of it, slower than torchvision's C++ loop: the
script also reports facenet's time without the time spent in that NMS (a bound in facenet's
favour, as if its NMS were free).

    swift build --product TFDetectBench     # .build/debug/TFDetectBench (TFDetect is built -O)
    TRANSFACE_FACENET_WHEEL=.build-data/facenet_pytorch-2.6.0-py3-none-any.whl PYTHONPATH=bindings/python \\
        python3 bindings/python/benchmarks/mtcnn_side_by_side.py --threads 1,2

OpenBLAS (our GEMMs) reads OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE when set; they are printed. To
measure the auto-detected kernel, unset both for the command only:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bindings/python/benchmarks/mtcnn_side_by_side.py ...
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.dirname(HERE))

import transface                                    # noqa: E402
from _machine import cpu_model, loadavg             # noqa: E402
import mtcnn_reference                              # noqa: E402
from mtcnn_reference import make_mtcnn              # noqa: E402

LFW_PHOTO = "lfw/images/Abdullatif_Sener/Abdullatif_Sener_0001.jpg"
GROUP_PHOTO = "photos_misc/dlib_examples_faces/2008_002470.jpg"


def frame_of(img, width=1280, height=720):
    """The image tiled with wrap-around (as TFDetectBench's `frame`)."""
    ys = np.arange(height) % img.shape[0]
    xs = np.arange(width) % img.shape[1]
    return np.ascontiguousarray(img[ys][:, xs])


class Ours:
    def __init__(self, tool, threads):
        self.p = subprocess.Popen([tool, "serve", str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.p.stdout.readline().strip() == "ready"

    def ms(self, path, reps, frame):
        self.p.stdin.write(f"{path} {reps}{' frame' if frame else ''}\n")
        self.p.stdin.flush()
        ms, faces = self.p.stdout.readline().split()
        return float(ms), int(faces)

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def torch_ms(mtcnn, img, reps):
    """(ms per call, faces, ms per call spent in the stubbed batched_nms)."""
    mtcnn_reference.NMS_SECONDS[0] = 0.0
    t0 = time.perf_counter()
    for _ in range(reps):
        boxes, _ = mtcnn.detect(img)
    ms = (time.perf_counter() - t0) * 1000 / reps
    return ms, 0 if boxes is None else len(boxes), mtcnn_reference.NMS_SECONDS[0] * 1000 / reps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/work/shared/data")
    ap.add_argument("--tool", default=os.path.join(REPO, ".build/debug/TFDetectBench"))
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(json.dumps({"cpu": cpu_model(), "torch": torch.__version__, "loadavg": loadavg(),
                      "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
                      "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE")}))
    mtcnn = make_mtcnn()
    lfw = transface.decode_image(os.path.join(args.root, LFW_PHOTO))
    group = transface.decode_image(os.path.join(args.root, GROUP_PHOTO))
    workloads = [("LFW 250x250", os.path.join(args.root, LFW_PHOTO), lfw, False, 20),
                 ("frame 1280x720", os.path.join(args.root, GROUP_PHOTO), frame_of(group), True, 3)]
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        ours = Ours(args.tool, threads)
        for name, path, img, frame, reps in workloads:
            torch_ms(mtcnn, img, 1)
            ours.ms(path, 1, frame)
            a, b = [], []
            for r in range(args.rounds):
                steps = [lambda: a.append(ours.ms(path, reps, frame)), lambda: b.append(torch_ms(mtcnn, img, reps))]
                for s in (steps if r % 2 == 0 else steps[::-1]):
                    s()
            ma, mb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
            mc = statistics.median(x[0] - x[2] for x in b)
            rows.append((threads, name, ma, mb))
            print(json.dumps({"threads": threads, "workload": name, "ours_ms": round(ma, 2), "facenet_ms": round(mb, 2),
                              "facenet_without_nms_ms": round(mc, 2), "facenet_over_ours": round(mb / ma, 2),
                              "facenet_without_nms_over_ours": round(mc / ma, 2),
                              "faces_ours": a[-1][1], "faces_facenet": b[-1][1]}),
                  flush=True)
        ours.close()
    # On an oversubscribed machine torch's team at n threads can be slower than at 1: also compare
    # ours at each thread count with facenet's best time at any thread count of this run.
    for threads, name, ma, _ in rows:
        best = min(mb for _, n, _, mb in rows if n == name)
        print(json.dumps({"threads": threads, "workload": name, "ours_ms": round(ma, 2), "facenet_best_ms": round(best, 2),
                          "facenet_best_over_ours": round(best / ma, 2)}), flush=True)


if __name__ == "__main__":
    main()
