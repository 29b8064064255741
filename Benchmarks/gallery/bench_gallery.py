#!/usr/bin/env python3
"""Exact top-10 over N x 512 random unit float32 vectors: TFGalleryBench against faiss IndexFlatIP.

    python3 Benchmarks/gallery/bench_gallery.py [N ...]      (default 100000 1000000)

Writes the vectors once to $GALLERY_BENCH_DIR (default /dev/shm/gallery-bench: the gallery
files live there too, so enrolment's fsyncs are free and load times are page-cache reads),
runs faiss on them with 1 and 2 OpenMP threads, then the release build of TFGalleryBench
(swift build -c release --product TFGalleryBench) on the same files. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are unset for both, so each library picks its kernels for this CPU.
"""
import os, subprocess, sys, time
import numpy as np

for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(v, None)
import faiss  # noqa: E402  (after the environment is cleaned)

DIM = 512
folder = os.environ.get("GALLERY_BENCH_DIR", "/dev/shm/gallery-bench")
os.makedirs(folder, exist_ok=True)
sizes = [int(s) for s in sys.argv[1:]] or [100_000, 1_000_000]
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
for n in sizes:
    base = np.fromfile(base_path, dtype=np.float32, count=n * DIM).reshape(n, DIM)
    index = faiss.IndexFlatIP(DIM)
    index.add(base)
    del base
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        for m, reps in ((1, 20), (32, 3)):
            index.search(queries[:m], 10)
            t = time.perf_counter()
            for r in range(reps):
                q = queries[r % 32: r % 32 + 1] if m == 1 else queries
                _, ids = index.search(q, 10)
                if r == 0 and m == 32 and threads == 1:
                    top = ",".join(str(i) for i in ids[0])
            print(f"faiss_search_ms\t{n}\tthreads {threads}\tqueries {m}\t{(time.perf_counter() - t) / reps * 1000:.2f}")
    print(f"faiss_top10_q0\t{n}\t{top}")
    del index
    sys.stdout.flush()
    subprocess.run([bench, base_path, query_path, str(n), str(DIM), folder], check=True)
    if n <= 100_000:
        subprocess.run([bench, base_path, query_path, str(n), str(DIM), folder, "float16"], check=True)
