#!/usr/bin/env python3
"""libtransface and ONNX Runtime (and optionally PyTorch) side by side, in one process.

For each model (official presets with official-init random weights, or given .tfm files) the
model is exported to ONNX (transface.onnx_export); then for each batch size both engines run
ALTERNATELY on the same uint8 [B, 112, 112, 3] faces: warm-up calls, then rounds in which every
engine runs once (the order alternates from round to round so drift and neighbours' load hit
both alike), until --duration seconds and at least --min-rounds rounds have passed. A call
includes everything from uint8 pixels to the raw embedding (ours: Context.embed(normalize=False);
ONNX Runtime: the exported graph, which contains the preprocessing). The result per engine is
the median images/s over the rounds. The outputs are checked to agree (cosine >= 0.9999 for
every image).

    PYTHONPATH=bindings/python TRANSFACE_LIBRARY=.build/release/libtransface.so \\
        python3 bindings/python/benchmarks/side_by_side.py --configs vit_t,vit_s --batches 1,8,32

Engines: ours = a transface.Context with --threads workers and max batch = the batch size;
ONNX Runtime = CPUExecutionProvider, intra_op_num_threads = --threads, inter_op_num_threads 1,
sequential execution, all graph optimisations; --torch adds PyTorch (if importable) running a
small re-implementation of the model in this file with torch.set_num_threads(--threads).

OpenBLAS (our GEMMs) picks its kernel from the CPU unless OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE
say otherwise; the script prints what is set and the kernel in effect. A benchmark command may
unset both for itself to measure the auto-detected kernel:
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bindings/python/benchmarks/side_by_side.py ...
(tests never do that.) GFLOP/image counts a multiply-add as 2 FLOPs over every matrix product
and the patch convolution (LayerNorm, softmax and elementwise work are not counted).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))          # bindings/python: run without installing

import transface                                    # noqa: E402
from _machine import cpu_model, loadavg, openblas_info  # noqa: E402
from transface.onnx_export import export_onnx       # noqa: E402

COSINE_MIN = 0.9999
COSINE_MIN_BF16 = 0.9995   # the bf16 mode's promise against float32


# ------------------------------------------------------------------ facts


def gflop_per_image(c):
    """Multiply-adds × 2 of the matrix products and the patch conv, in GFLOP."""
    P, D, hid, E, k = c.num_patches, c.embed_dim, c.mlp_hidden_dim, c.embedding_size, c.in_channels * c.patch_size ** 2
    patch = P * k * D
    block = P * D * 3 * D + 2 * P * P * D + P * D * D + 2 * P * D * hid
    se = (P * D * P + P * P) if c.se_gate else 0
    head = P * D * D + D * E
    return 2 * (patch + c.depth * block + se + head) / 1e9


# ------------------------------------------------------------------ engines


class Ours:
    def __init__(self, model, threads, batch, precision="fp32"):
        self.name = "ours" if precision == "fp32" else f"ours_{precision}"
        self.ctx = transface.Context(model, threads=threads, max_batch=batch, precision=precision)

    def __call__(self, x):
        return self.ctx.embed(x, normalize=False)

    def close(self):
        self.ctx.close()


class OnnxRuntime:
    name = "ort"

    def __init__(self, path, threads):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.input = self.sess.get_inputs()[0].name

    def __call__(self, x):
        return self.sess.run(None, {self.input: x})[0]

    def close(self):
        self.sess = None


class Torch:
    """A small PyTorch re-implementation of the TransFace forward pass (inference only)."""
    name = "torch"

    def __init__(self, model, threads):
        import torch
        import torch.nn.functional as F
        self.torch, self.F = torch, F
        torch.set_num_threads(threads)
        self.c, pre = model.config, model.preprocess
        self.w = {n: torch.from_numpy(model.read_tensor(n)) for n in model.tensor_names()}
        self.mean = torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1)
        self.bgr = str(pre.channel_order).upper() == "BGR"

    def __call__(self, images):
        torch, F, c, w = self.torch, self.F, self.c, self.w
        with torch.inference_mode():
            n, side = images.shape[0], c.grid * c.patch_size
            P, D, H = c.num_patches, c.embed_dim, c.num_heads
            hd = D // H
            x = torch.from_numpy(images)[:, :side, :side].permute(0, 3, 1, 2).float()
            if self.bgr:
                x = x.flip(1)
            x = (x / 255 - self.mean) / self.std
            x = F.conv2d(x, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=c.patch_size)
            x = x.flatten(2).transpose(1, 2) + w["pos_embed"]
            for i in range(c.depth):
                b = f"blocks.{i}."
                y = F.layer_norm(x, (D,), w[b + "norm1.weight"], w[b + "norm1.bias"], 1e-5)
                qkv = F.linear(y, w[b + "attn.qkv.weight"]).reshape(n, P, 3, H, hd).permute(2, 0, 3, 1, 4)
                q, k, v = qkv[0], qkv[1], qkv[2]
                a = ((q @ k.transpose(-2, -1)) * hd ** -0.5).softmax(dim=-1)
                y = (a @ v).transpose(1, 2).reshape(n, P, D)
                x = x + F.linear(y, w[b + "attn.proj.weight"], w[b + "attn.proj.bias"])
                y = F.layer_norm(x, (D,), w[b + "norm2.weight"], w[b + "norm2.bias"], 1e-5)
                y = F.relu6(F.linear(y, w[b + "mlp.fc1.weight"], w[b + "mlp.fc1.bias"]))
                x = x + F.linear(y, w[b + "mlp.fc2.weight"], w[b + "mlp.fc2.bias"])
            x = F.layer_norm(x, (D,), w["norm.weight"], w["norm.bias"], 1e-5)
            if c.se_gate:
                s = F.relu(F.linear(x.reshape(n, P * D), w["senet.0.weight"]))
                s = torch.sigmoid(F.linear(s, w["senet.2.weight"]))
                x = x * s.unsqueeze(-1)
            x = F.linear(x.reshape(n, P * D), w["feature.0.weight"])
            x = F.batch_norm(x, w["feature.1.running_mean"], w["feature.1.running_var"], w["feature.1.weight"],
                             w["feature.1.bias"], training=False, eps=2e-5)
            x = F.linear(x, w["feature.2.weight"])
            x = F.batch_norm(x, w["feature.3.running_mean"], w["feature.3.running_var"], w["feature.3.weight"],
                             w["feature.3.bias"], training=False, eps=2e-5)
            return x.numpy()

    def close(self):
        self.w = None


# ------------------------------------------------------------------ measuring


def agreement(ref, got):
    a, b = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min_cosine": float(cos.min()),
            "max_rel_diff": float(np.abs(a - b).max() / np.abs(a).max())}


def measure(engines, x, warmup, duration, min_rounds, max_rounds, settle):
    """Per engine: list of seconds per call, from alternating rounds. Before every timed call
    the process sleeps `settle` seconds (untimed), so the previous engine's idle workers
    (ONNX Runtime's spin-wait for work after a run) no longer compete for the cores."""
    for _ in range(warmup):
        for e in engines:
            e(x)
    times = {e.name: [] for e in engines}
    start = time.perf_counter()
    r = 0
    while r < max_rounds and (r < min_rounds or time.perf_counter() - start < duration):
        order = engines if r % 2 == 0 else engines[::-1]
        for e in order:
            time.sleep(settle)
            t = time.perf_counter()
            e(x)
            times[e.name].append(time.perf_counter() - t)
        r += 1
    return times


def load_models(args):
    """(label, Model) pairs: presets with official-init weights, then .tfm files."""
    out = []
    for name in [s for s in args.configs.split(",") if s]:
        with transface.Builder(name) as b:
            b.init_weights(seed=args.seed)
            out.append((name, b.build()))
    for path in args.model or []:
        out.append((os.path.basename(path), transface.Model(path)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="vit_t,vit_s",
                   help="comma-separated presets with official-init random weights ('' for none; default vit_t,vit_s)")
    p.add_argument("--model", action="append", metavar="TFM", help="a model file to benchmark too (repeatable)")
    p.add_argument("--batches", default="1,8,32", help="comma-separated batch sizes (default 1,8,32)")
    p.add_argument("--threads", type=int, default=2, help="threads of every engine (default 2)")
    p.add_argument("--duration", type=float, default=10.0,
                   help="seconds of alternating rounds per model and batch (default 10)")
    p.add_argument("--min-rounds", type=int, default=5)
    p.add_argument("--settle-ms", type=float, default=50.0,
                   help="untimed pause before every timed call, so the other engine's spinning workers are idle (default 50)")
    p.add_argument("--max-rounds", type=int, default=10000)
    p.add_argument("--warmup", type=int, default=2, help="warm-up calls per engine (default 2)")
    p.add_argument("--seed", type=int, default=0, help="weights and images (default 0)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--fixed-batch", action="store_true",
                   help="export one ONNX graph per batch size with a fixed batch (default: one dynamic graph)")
    p.add_argument("--torch", action="store_true", help="add PyTorch (if importable)")
    p.add_argument("--bf16", action="store_true",
                   help="add our bf16 mode (Context(precision='bf16'); needs AVX512_BF16 or AMX)")
    p.add_argument("--keep-onnx", metavar="DIR", help="write the ONNX files here instead of a temporary folder")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    args = p.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",") if b]
    if not batches or min(batches) < 1 or args.threads < 1:
        p.error("batch sizes and --threads must be positive")
    try:
        import onnxruntime as ort
    except ImportError:
        p.error("onnxruntime is not importable (pip install onnx onnxruntime)")
    torch_ok = False
    if args.torch:
        try:
            import torch
            torch_ok = True
        except ImportError:
            print("note: --torch given but torch is not importable; PyTorch is skipped", flush=True)

    import onnx
    blas = openblas_info()
    system = {"cpu": cpu_model(), "cpus": os.cpu_count(), "loadavg_start": loadavg(),
              "python": platform.python_version(), "numpy": np.__version__,
              "libtransface": transface.version(), "library_path": transface.library_path(),
              "onnxruntime": ort.__version__, "onnx": onnx.__version__,
              "torch": __import__("torch").__version__ if torch_ok else None, "openblas": blas,
              "threads": args.threads, "duration": args.duration, "warmup": args.warmup,
              "min_rounds": args.min_rounds, "settle_ms": args.settle_ms, "seed": args.seed, "opset": args.opset,
              "fixed_batch_graphs": args.fixed_batch}

    def fmt(v):
        return "(unset)" if v is None else v
    print(f"cpu: {system['cpu']}, {system['cpus']} cpus, load average {system['loadavg_start']}")
    print(f"libtransface {system['libtransface']} ({system['library_path']}); onnxruntime {ort.__version__}; "
          f"onnx {onnx.__version__}" + (f"; torch {system['torch']}" if torch_ok else ""))
    print(f"OpenBLAS: OPENBLAS_CORETYPE={fmt(blas['OPENBLAS_CORETYPE'])} OPENBLAS_L2_SIZE="
          f"{fmt(blas['OPENBLAS_L2_SIZE'])}; kernel in effect: {blas.get('corename', '?')} "
          f"({blas.get('config', '?')}; {blas.get('library') or 'library not found'})")
    print("  (a benchmark command may unset both for itself: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
          "python3 side_by_side.py ...)")
    print(f"engines: ours = Context(threads={args.threads}, max_batch=batch"
          f"{'; also precision=bf16' if args.bf16 else ''}); ort = CPU EP, intra_op "
          f"{args.threads}, inter_op 1, sequential" + (f"; torch = set_num_threads({args.threads})" if torch_ok else ""))
    print(f"timing: {args.warmup} warm-up calls each, then alternating rounds (a {args.settle_ms:g} ms untimed pause before every call) for >= {args.duration:g} s and "
          f">= {args.min_rounds} rounds; median images/s", flush=True)

    tmp = None
    folder = args.keep_onnx
    if folder:
        os.makedirs(folder, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="transface-bench-")
        folder = tmp.name
    results = []
    models = load_models(args)
    try:
        for label, model in models:
            gflop = gflop_per_image(model.config)
            graphs = {}
            for batch in (batches if args.fixed_batch else [None]):
                path = os.path.join(folder, f"{label}{'' if batch is None else f'_b{batch}'}.onnx")
                t = time.perf_counter()
                export_onnx(model, path, batch=batch, opset=args.opset)
                print(f"{label}: exported {os.path.basename(path)} in {time.perf_counter() - t:.1f} s", flush=True)
                graphs[batch] = path
            rng = np.random.default_rng(args.seed)
            for batch in batches:
                x = rng.integers(0, 256, (batch, model.config.img_size, model.config.img_size, 3), dtype=np.uint8)
                engines = [Ours(model, args.threads, batch),
                           OnnxRuntime(graphs[batch if args.fixed_batch else None], args.threads)]
                if args.bf16:
                    engines.append(Ours(model, args.threads, batch, "bf16"))
                if torch_ok:
                    engines.append(Torch(model, args.threads))
                try:
                    ref = engines[0](x)
                    agree = {e.name: agreement(ref, e(x)) for e in engines[1:]}
                    times = measure(engines, x, args.warmup, args.duration, args.min_rounds, args.max_rounds,
                                    args.settle_ms / 1000)
                finally:
                    for e in engines:
                        e.close()
                row = {"model": label, "batch": batch, "gflop_per_image": gflop, "agreement": agree,
                       "ok": all(a["min_cosine"] >= (COSINE_MIN_BF16 if k == "ours_bf16" else COSINE_MIN)
                                 for k, a in agree.items()), "engines": {}}
                for name, ts in times.items():
                    med = statistics.median(ts)
                    row["engines"][name] = {"median_s": med, "images_per_s": batch / med, "rounds": len(ts),
                                            "min_s": min(ts), "max_s": max(ts),
                                            "gflop_per_s": gflop * batch / med}
                results.append(row)
                e = row["engines"]
                extra = "".join(f", {k} {e[k]['images_per_s']:.1f} img/s" for k in ("ours_bf16", "torch") if k in e)
                print(f"{label} batch {batch}: ours {e['ours']['images_per_s']:.1f} img/s, ort "
                      f"{e['ort']['images_per_s']:.1f} img/s{extra} ({e['ours']['rounds']} rounds); "
                      + ", ".join(f"{k} min cosine {a['min_cosine']:.7f}" for k, a in agree.items()), flush=True)
            model.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    system["loadavg_end"] = loadavg()

    # table
    cols = ["config", "batch", "ours img/s", "ORT img/s", "ratio ours/ORT"]
    if args.bf16:
        cols += ["bf16 img/s", "ratio bf16/ORT"]
    if torch_ok:
        cols += ["torch img/s", "ratio ours/torch"]
    cols += ["GFLOP/image", "ours GFLOP/s", "agree"]
    rows = []
    for r in results:
        e = r["engines"]
        row = [r["model"], str(r["batch"]), f"{e['ours']['images_per_s']:.1f}", f"{e['ort']['images_per_s']:.1f}",
               f"{e['ours']['images_per_s'] / e['ort']['images_per_s']:.2f}"]
        if args.bf16:
            row += [f"{e['ours_bf16']['images_per_s']:.1f}", f"{e['ours_bf16']['images_per_s'] / e['ort']['images_per_s']:.2f}"]
        if torch_ok:
            row += [f"{e['torch']['images_per_s']:.1f}", f"{e['ours']['images_per_s'] / e['torch']['images_per_s']:.2f}"]
        row += [f"{r['gflop_per_image']:.2f}", f"{e['ours']['gflop_per_s']:.1f}",
                "yes" if r["ok"] else "NO"]
        rows.append(row)
    widths = [max(len(c), *(len(x[i]) for x in rows)) if rows else len(c) for i, c in enumerate(cols)]
    print()
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))) + " |")
    print(f"\nload average at the end: {system['loadavg_end']}; agree = every image's cosine >= {COSINE_MIN} "
          f"to ours fp32 (bf16: >= {COSINE_MIN_BF16})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"system": system, "results": results}, f, indent=1)
        print(f"wrote {args.json}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
