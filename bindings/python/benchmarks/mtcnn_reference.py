#!/usr/bin/env python3
"""facenet-pytorch 2.6.0's MTCNN (the reference of Sources/TFDetect) on a list of images.

Writes JSON: {"images": [{"path", "width", "height", "faces": [{"box", "score", "landmarks"}]}]}
with facenet's `MTCNN().detect(img, landmarks=True)` output in its order (default
select_largest=True: largest box first). Paths are written relative to --root.

Images are decoded by libtransface (transface.decode_image: libjpeg-turbo, the pixels TFImage's
ImageDecoder gives the Swift side), so both sides see identical pixels.

facenet-pytorch is installed without its pinned dependencies
(`pip install --no-deps facenet_pytorch-2.6.0-py3-none-any.whl`). It imports torchvision only for
`batched_nms` (and transforms it never uses in `detect`); no torchvision wheel exists for torch
2.13 on this machine, so `torchvision.ops.boxes.batched_nms` is stubbed below with a
re-implementation of torchvision's CPU rule (areas without +1, stable descending score order,
suppress IoU > threshold; per image through the coordinate offset trick). tqdm and PIL are stubbed when missing.

The fixture of Tests/TFDetectTests was made with:
    PYTHONPATH=bindings/python python3 bindings/python/benchmarks/mtcnn_reference.py \\
        --fixture-set --root /work/shared/data \\
        --out Tests/TFDetectTests/Fixtures/mtcnn_reference.json
"""

import argparse
import json
import os
import sys
import time
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))          # bindings/python: run without installing


NMS_SECONDS = [0.0]   # time spent in the stubbed batched_nms (the benchmark reports it)


def torchvision_nms(boxes, scores, iou_threshold):
    """torchvision's CPU nms_kernel in float32 numpy: areas (x2-x1)*(y2-y1), a stable sort by
    descending score, a box dropped when its IoU with a kept one is > iou_threshold."""
    b, s = boxes.numpy(), scores.numpy()
    if len(b) == 0:
        return torch.empty((0,), dtype=torch.int64)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-s, kind="stable")
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    for i in order:
        if suppressed[i]:
            continue
        keep.append(i)
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2) - np.maximum(x1[i], x1))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2) - np.maximum(y1[i], y1))
        inter = w * h
        suppressed |= inter / (areas[i] + areas - inter) > np.float32(iou_threshold)
    return torch.as_tensor(np.array(keep, dtype=np.int64))


def batched_nms(boxes, scores, idxs, iou_threshold):
    """torchvision.ops.batched_nms by the coordinate trick (kept indices by decreasing score)."""
    t0 = time.perf_counter()
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    keep = torchvision_nms(boxes + offsets[:, None], scores, iou_threshold)
    NMS_SECONDS[0] += time.perf_counter() - t0
    return keep


def install_stubs():
    try:
        import torchvision  # noqa: F401
        return "torchvision"
    except ImportError:
        pass
    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    ops_boxes = types.ModuleType("torchvision.ops.boxes")
    ops_boxes.batched_nms = batched_nms
    ops.boxes = ops_boxes
    transforms = types.ModuleType("torchvision.transforms")
    functional = types.ModuleType("torchvision.transforms.functional")
    transforms.functional = functional
    tv.ops, tv.transforms = ops, transforms
    for name, mod in [("torchvision", tv), ("torchvision.ops", ops), ("torchvision.ops.boxes", ops_boxes),
                      ("torchvision.transforms", transforms), ("torchvision.transforms.functional", functional)]:
        sys.modules[name] = mod
    try:
        import PIL  # noqa: F401
    except ImportError:                              # only used for PIL inputs, never here
        pil = types.ModuleType("PIL")
        pil.Image = types.ModuleType("PIL.Image")
        sys.modules["PIL"], sys.modules["PIL.Image"] = pil, pil.Image
    try:
        import tqdm  # noqa: F401
    except ImportError:
        tq = types.ModuleType("tqdm")
        tq.tqdm = lambda *a, **k: None
        auto = types.ModuleType("tqdm.auto")
        auto.tqdm = tq.tqdm
        sys.modules["tqdm"], sys.modules["tqdm.auto"] = tq, auto
    return "stub (torchvision CPU nms re-implemented)"


def fixture_set(root):
    """50 LFW photos (every 119th of the sorted list of all 5,985, from index 7) + the
    dlib example photos (group photos and dogs.jpg, which has no face)."""
    lfw = []
    for dirpath, _, files in os.walk(os.path.join(root, "lfw/images")):
        lfw += [os.path.relpath(os.path.join(dirpath, f), root) for f in files if f.endswith(".jpg")]
    lfw.sort()
    picked = lfw[7::119][:50]
    misc = sorted(os.path.join("photos_misc/dlib_examples_faces", f)
                  for f in os.listdir(os.path.join(root, "photos_misc/dlib_examples_faces")) if f.endswith(".jpg"))
    return picked + misc


def make_mtcnn():
    install_stubs()
    from facenet_pytorch import MTCNN
    return MTCNN(keep_all=True)


def faces_of(mtcnn, img):
    boxes, probs, points = mtcnn.detect(img, landmarks=True)
    if boxes is None:
        return []
    return [{"box": [float(v) for v in b], "score": float(p), "landmarks": [float(v) for v in pt.reshape(-1)]}
            for b, p, pt in zip(boxes, probs, points)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", help="image paths relative to --root")
    ap.add_argument("--root", default="/work/shared/data")
    ap.add_argument("--fixture-set", action="store_true", help="the parity test's images (see fixture_set)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import transface
    nms_source = install_stubs()
    mtcnn = make_mtcnn()
    paths = (fixture_set(args.root) if args.fixture_set else []) + args.images
    out = []
    for p in paths:
        img = transface.decode_image(os.path.join(args.root, p))
        out.append({"path": p, "width": int(img.shape[1]), "height": int(img.shape[0]), "faces": faces_of(mtcnn, img)})
    meta = {"reference": "facenet-pytorch 2.6.0 MTCNN(keep_all=True).detect(landmarks=True)",
            "torch": torch.__version__, "numpy": np.__version__, "batched_nms": nms_source,
            "decoder": "transface.decode_image"}
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "images": out}, f, indent=1)
    print(f"{len(out)} images, {sum(len(i['faces']) for i in out)} faces -> {args.out}")


if __name__ == "__main__":
    main()
