import CDNNLMatmul
import TFCore
import TFGallery
#if canImport(Glibc)
import Glibc
#endif

// TFGalleryBench: exact top-10 over a gallery built from a file of float32 vectors
// (Benchmarks/gallery/bench_gallery.py writes them and runs faiss on the same ones).
//
//   TFGalleryBench BASE.f32 QUERIES.f32 N DIM FOLDER [float32|float16]
// Enrols the first N vectors of BASE (one identity each) into FOLDER/gN.tfg unless it exists,
// reopens it (load time), then times 1-query and 32-query searches with 1 and 2 threads and,
// for N ≤ 100 000, sgemm against oneDNN's matmul on packed tiles. Prints one line per figure.

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9 }

func readFloats(_ path: String, count: Int) throws -> [Float] {
    let f = try ReadableFile(path: path)
    var v = [Float](repeating: 0, count: count)
    try v.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
    return v
}

let a = CommandLine.arguments
guard a.count >= 6, let n = Int(a[3]), let dim = Int(a[4]) else {
    print("usage: TFGalleryBench BASE.f32 QUERIES.f32 N DIM FOLDER [float32|float16]"); exit(2)
}
let storage: GalleryStorage = a.count > 6 && a[6] == "float16" ? .float16 : .float32
let path = "\(a[5])/g\(n)\(storage == .float16 ? "-f16" : "").tfg"
let fp = try GalleryFingerprint(architecture: "bench", embeddingSize: dim, weightsHash: 42)
let queries = try readFloats(a[2], count: 32 * dim)
if access(path, F_OK) != 0 {
    let base = try readFloats(a[1], count: n * dim)
    let g = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(storage: storage))
    let t = now()
    try base.withUnsafeBufferPointer { b in
        for i in 0..<n { try g.enrol(label: "\(i)", embeddings: UnsafeBufferPointer(rebasing: b[(i * dim)..<((i + 1) * dim)])) }
    }
    print("enrol_s\t\(n)\t\(now() - t)")
    g.close()
}
let size = try ReadableFile(path: path).size
print("file_bytes\t\(n)\t\(size)\t\(Double(size) / Double(n)) per vector")
for threads in [1, 2] {
    let t0 = now()
    let g = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true, searchThreads: threads))
    if threads == 1 { print("load_s\t\(n)\t\(now() - t0)") }
    var top = ""
    for (m, reps) in [(1, 20), (32, 3)] {
        _ = try g.search(queries: Array(queries[0..<(m * dim)]), k: 10, threshold: 0.5)  // warm
        let t = now()
        for r in 0..<reps {
            let q = m == 1 ? Array(queries[(r % 32 * dim)..<((r % 32 + 1) * dim)]) : queries
            let hits = try g.search(queries: q, k: 10, threshold: 0.5)
            if r == 0 && m == 32 { top = hits[0].map(\.label).joined(separator: ",") }
        }
        print("search_ms\t\(n)\t\(storage)\tthreads \(threads)\tqueries \(m)\t\((now() - t) / Double(reps) * 1000)")
    }
    if threads == 1 { print("top10_q0\t\(n)\t\(storage)\t\(top)") }
}

// sgemm against oneDNN matmul on packed tiles of 4096 rows (the scan's product, nothing else)
if n <= 100_000 && storage == .float32 {
    let base = try readFloats(a[1], count: n * dim)
    let tile = 4096, tiles = n / tile
    BLAS.useSingleThread()
    for m in [1, 32] {
        var y = [Float](repeating: 0, count: m * tile)
        var t = now()
        for _ in 0..<5 { for i in 0..<tiles {
            base.withUnsafeBufferPointer { b in queries.withUnsafeBufferPointer { q in y.withUnsafeMutableBufferPointer { c in
                BLAS.gemm(m: m, n: tile, k: dim, a: q.baseAddress!, lda: dim, b: b.baseAddress! + i * tile * dim, ldb: dim, transposeB: true, c: c.baseAddress!, ldc: tile)
            } } }
        } }
        print("product_ms\tsgemm\tqueries \(m)\t\((now() - t) / 5 * 1000 * Double(n) / Double(tiles * tile))")
        var shape = tf_matmul_shape(m: Int64(m), n: Int64(tile), k: Int64(dim), a_row_stride: Int64(dim), a_col_stride: 1,
                                    b_row_stride: 1, b_col_stride: Int64(dim), ldy: Int64(tile), packed_b: 1, precision: TF_MATMUL_F32, epilogue: TF_MATMUL_PLAIN)
        var mm: OpaquePointer?, ex: OpaquePointer?
        var err = [CChar](repeating: 0, count: 256)
        guard tf_matmul_create(&mm, &shape, &err, 256) == 0, tf_matmul_exec_create(mm, &ex, &err, 256) == 0 else { print("onednn: \(String(cString: err))"); exit(1) }
        let bytes = tf_matmul_packed_weight_bytes(mm)
        var packed: [UnsafeMutableRawPointer] = []
        for i in 0..<tiles {
            var p: UnsafeMutableRawPointer?
            posix_memalign(&p, 64, bytes)
            _ = base.withUnsafeBufferPointer { tf_matmul_pack_weight(mm, $0.baseAddress! + i * tile * dim, p, &err, 256) }
            packed.append(p!)
        }
        t = now()
        for _ in 0..<5 { for i in 0..<tiles {
            _ = queries.withUnsafeBufferPointer { q in y.withUnsafeMutableBufferPointer { c in tf_matmul_run(ex, q.baseAddress!, packed[i], nil, c.baseAddress!, &err, 256) } }
        } }
        print("product_ms\tonednn(packed)\tqueries \(m)\t\((now() - t) / 5 * 1000 * Double(n) / Double(tiles * tile))")
        packed.forEach { free($0) }
        tf_matmul_exec_free(ex); tf_matmul_free(mm)
    }
}
