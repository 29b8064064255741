import TFCore
import TFGallery
#if canImport(Glibc)
import Glibc
#endif

// TFGalleryBench: exact top-10 over a gallery built from a file of float32 vectors, driven by
// Benchmarks/gallery/bench_gallery.py, which times faiss on the same vectors in turns with it.
//
//   TFGalleryBench BASE.f32 QUERIES.f32 N DIM FOLDER float32|float16|int8
//   TFGalleryBench hnsw ...   (the HNSW index against the exact scan: HNSWBench.swift)
// Enrols the first N vectors of BASE (one identity each) into FOLDER/gN[-STORAGE].tfg unless it
// exists, times opening it (replay of the whole log, then from the snapshot beside it, which
// closing a writer creates), then answers
// lines "THREADS M REPS" on stdin, each with one line: ms per search of M queries (the mean of
// REPS searches, query r % 32 for M = 1) and the labels of query 0's top 10. An empty line ends.

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }

func readFloats(_ path: String, count: Int) throws -> [Float] {
    let f = try ReadableFile(path: path)
    var v = [Float](repeating: 0, count: count)
    try v.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
    return v
}

if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "hnsw" {
    try hnswBench(Array(CommandLine.arguments.dropFirst()))
    exit(0)
}
let a = CommandLine.arguments
guard a.count == 7, let n = Int(a[3]), let dim = Int(a[4]), let storage = GalleryStorage.allCases.first(where: { "\($0)" == a[6] }) else {
    print("usage: TFGalleryBench BASE.f32 QUERIES.f32 N DIM FOLDER float32|float16|int8"); exit(2)
}
let path = "\(a[5])/g\(n)\(storage == .float32 ? "" : "-\(storage)").tfg"
let fp = try GalleryFingerprint(architecture: "bench", embeddingSize: dim, weightsHash: 42)
let queries = try readFloats(a[2], count: 32 * dim)
if access(path, F_OK) != 0 {
    let base = try readFloats(a[1], count: n * dim)
    let g = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(storage: storage))
    let t = now()
    try base.withUnsafeBufferPointer { b in
        for i in 0..<n { try g.enrol(label: "\(i)", embeddings: UnsafeBufferPointer(rebasing: b[(i * dim)..<((i + 1) * dim)])) }
    }
    print("enrol_s\t\(n)\t\(storage)\t\(now() - t)")
    g.close()
}
let size = try ReadableFile(path: path).size
print("file_bytes\t\(n)\t\(storage)\t\(size)\t\(Double(size) / Double(n)) per vector")
let snapshot = path + ".snap"
if access(snapshot, F_OK) != 0 { try Gallery.open(path: path, fingerprint: fp).close() }  // close writes it
rename(snapshot, snapshot + ".off")
var t0 = now()
_ = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true))
print("load_s\t\(n)\t\(storage)\treplay of the log\t\(now() - t0)")
rename(snapshot + ".off", snapshot)
/// The gallery opened read-only with `threads` search threads (one open at a time: reopened,
/// from the snapshot, when the thread count changes).
var open: (threads: Int, gallery: Gallery)?
func gallery(threads: Int) throws -> Gallery {
    if let open, open.threads == threads { return open.gallery }
    open?.gallery.close()
    open = nil
    let t0 = now()
    let g = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true, searchThreads: threads))
    print("load_s\t\(n)\t\(storage)\tfrom the snapshot (\(g.snapshotEnd > 0 ? "used" : "NOT used: \(g.snapshotProblem ?? "none")"))\t\(now() - t0)")
    open = (threads, g)
    return g
}
_ = try gallery(threads: 1)
fflush(stdout)
while let line = readLine(), !line.isEmpty {
    let f = line.split(separator: " ").compactMap { Int($0) }
    guard f.count == 3, (1...2).contains(f[0]), (1...32).contains(f[1]), f[2] >= 1 else { print("bad request '\(line)'"); exit(2) }
    let g = try gallery(threads: f[0])
    let (m, reps) = (f[1], f[2])
    var top = ""
    let t = now()
    for r in 0..<reps {
        let q = m == 1 ? Array(queries[(r % 32 * dim)..<((r % 32 + 1) * dim)]) : Array(queries[0..<(m * dim)])
        let hits = try g.search(queries: q, k: 10, threshold: 0.5)
        if r == 0 { top = hits[0].map(\.label).joined(separator: ",") }
    }
    print("\((now() - t) / Double(reps) * 1000)\t\(top)")
    fflush(stdout)
}
