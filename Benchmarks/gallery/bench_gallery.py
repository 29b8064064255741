#!/usr/bin/env python3
"""Exact top-10 over N x 512 random unit float32 vectors: TFGallery against faiss, in turns.

    python3 Benchmarks/gallery/bench_gallery.py [--rounds R] [--storages float32,float16,int8] [N ...]
                                               (default 100000 1000000, 5 rounds)

Writes the vectors once to $GALLERY_BENCH_DIR (default /dev/shm/gallery-bench: the gallery
files live there too, so enrolment's fsyncs are free and load times are page-cache reads),
builds faiss IndexFlatIP (and IndexScalarQuantizer fp16 / 8bit beside our float16 / int8), and
starts the release build of TFGalleryBench (swift build -c release --product TFGalleryBench)
on the same files. Then, R rounds, for 1 and 2 threads and 1 and 32 queries: a block of faiss
searches, then the same block of ours, so both see the same load of a shared machine. Prints
the median ms per search of each and the median of the per-round ratios faiss / ours.
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for both, so each picks its kernels here.
"""
import os, statistics, subprocess, sys, time
import numpy as np

for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(v, None)
import faiss  # noqa: E402  (after the environment is cleaned)

DIM = 512
args = sys.argv[1:]
rounds, storages = 5, ["float32", "float16", "int8"]
while args and args[0].startswith("--"):
    if args[0] == "--rounds":
        rounds = int(args[1])
    elif args[0] == "--storages":
        storages = args[1].split(",")
    else:
        sys.exit(__doc__)
    args = args[2:]
sizes = [int(s) for s in args] or [100_000, 1_000_000]
folder = os.environ.get("GALLERY_BENCH_DIR", "/dev/shm/gallery-bench")
os.makedirs(folder, exist_ok=True)
base_path, query_path = f"{folder}/base.f32", f"{folder}/queries.f32"
if not os.path.exists(base_path) or os.path.getsize(base_path) < max(sizes) * DIM * 4:
    rng = np.random.default_rng(0)
    with open(base_path, "wb") as f:
        for start in range(0, max(sizes), 100_000):
            x = rng.standard_normal((min(100_000, max(sizes) - start), DIM), dtype=np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            f.write(x.tobytes())
    q = rng.standard_normal((32, DIM), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q.tofile(query_path)
queries = np.fromfile(query_path, dtype=np.float32).reshape(32, DIM)
print("cpu:", next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "| faiss", faiss.__version__)
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
bench = os.path.join(root, ".build", "release", "TFGalleryBench")
REPS = {1: 20, 32: 3}  # searches per block (1 M rows: 10 and 1)


def faiss_block(index, threads, m):
    faiss.omp_set_num_threads(threads)
    index.search(queries[:m], 10)  # warm
    t = time.perf_counter()
    for r in range(REPS[m]):
        _, ids = index.search(queries[r % 32: r % 32 + 1] if m == 1 else queries[:m], 10)
        if r == 0:
            top = ",".join(str(i) for i in ids[0])
    return (time.perf_counter() - t) / REPS[m] * 1000, top


def ours_block(proc, threads, m):
    """ms per search and query 0's top 10 (a reopen for another thread count prints its load time first)."""
    proc.stdin.write(f"{threads} {m} 1\n{threads} {m} {REPS[m]}\n")  # warm, then timed
    proc.stdin.flush()
    answers = []
    while len(answers) < 2:
        line = proc.stdout.readline()
        if line.startswith("load_s"):
            print(line, end="")
        else:
            answers.append(line)
    ms, top = answers[1].split("\t")
    return float(ms), top.strip()


for n in sizes:
    REPS = {1: 20, 32: 3} if n <= 100_000 else {1: 10, 32: 1}
    base = np.fromfile(base_path, dtype=np.float32, count=n * DIM).reshape(n, DIM)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    for storage in storages:
        indexes = [("IndexFlatIP", flat)]
        if storage != "float32":
            kind = "fp16" if storage == "float16" else "8bit"
            sq = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_fp16 if kind == "fp16" else faiss.ScalarQuantizer.QT_8bit,
                                            faiss.METRIC_INNER_PRODUCT)
            sq.train(base[:100_000])
            sq.add(base)
            indexes.append((f"IndexScalarQuantizer {kind}", sq))
        proc = subprocess.Popen([bench, base_path, query_path, str(n), str(DIM), folder, storage],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        loads = 0
        while True:  # enrolment, file size and load lines
            line = proc.stdout.readline()
            print(line, end="")
            if line.startswith("load_s"):
                loads += 1
            if loads == 2:
                break
        for threads in (1, 2):
            for m in (1, 32):
                ours, theirs, tops = [], {name: [] for name, _ in indexes}, set()
                for _ in range(rounds):
                    for name, index in indexes:
                        tf, top_f = faiss_block(index, threads, m)
                        theirs[name].append(tf)
                        if name == "IndexFlatIP":
                            exact_top = top_f
                    to, top_o = ours_block(proc, threads, m)
                    ours.append(to)
                    tops.add(top_o == exact_top)
                line = f"search\tN {n}\t{storage}\tthreads {threads}\tqueries {m}\tours {statistics.median(ours):.2f} ms"
                for name, t in theirs.items():
                    ratio = [a / b for a, b in zip(t, ours)]
                    line += f"\t{name} {statistics.median(t):.2f} ms, /ours {statistics.median(ratio):.2f} ({min(ratio):.2f}..{max(ratio):.2f})"
                print(line + f"\ttop10 of q0 = IndexFlatIP's: {tops == {True}}", flush=True)
        proc.stdin.write("\n"); proc.stdin.flush(); proc.wait()
        indexes = sq = None
    del base, flat
