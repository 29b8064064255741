import TFCore
import TFGallery
#if canImport(Glibc)
import Glibc
#endif

/// `TFGalleryBench hnsw N DIM FOLDER random|clustered M EF_CONSTRUCTION EF,EF,... BUILD_THREADS ROUNDS`:
/// the HNSW index against the exact fused scan on N float32 vectors of DIM (seeded: random unit
/// vectors, or clusters of 10 around random centres with noise 0.8 per value, about a face
/// embedding's same-identity cosine of 0.6), one identity each. Enrols them into
/// FOLDER/hnswN-KIND.tfg unless it exists; builds the graph (timed: open with the index =
/// build from the slab on BUILD_THREADS threads + write); then in ROUNDS turns times 100 single
/// queries (1 thread) by the exact scan and by the graph at each EF, and prints recall@10 of
/// the graph's top 10 identities against the exact ones.
func hnswBench(_ a: [String]) throws {
    guard a.count == 10, let n = Int(a[1]), let dim = Int(a[2]), ["random", "clustered"].contains(a[4]), let m = Int(a[5]), let efc = Int(a[6]),
          let buildThreads = Int(a[8]), let rounds = Int(a[9]) else {
        print("usage: TFGalleryBench hnsw N DIM FOLDER random|clustered M EF_CONSTRUCTION EF,EF,... BUILD_THREADS ROUNDS"); exit(2)
    }
    let efs = a[7].split(separator: ",").compactMap { Int($0) }
    let kind = a[4], path = "\(a[3])/hnsw\(n)-\(kind)-d\(dim).tfg"
    let fp = try GalleryFingerprint(architecture: "bench", embeddingSize: dim, weightsHash: 42)
    var rng = SeededRNG(seed: 2024)
    let centres = (0..<((n + 9) / 10 * dim)).map { _ in Float(rng.normal()) }
    func vector(_ i: Int) -> [Float] {
        kind == "random" ? (0..<dim).map { _ in Float(rng.normal()) } : (0..<dim).map { centres[(i / 10) * dim + $0] + 0.8 * Float(rng.normal()) }
    }
    if access(path, F_OK) != 0 {
        let g = try Gallery.open(path: path, fingerprint: fp)
        let t = now()
        for i in 0..<n { try g.enrol(label: "\(i)", embeddings: vector(i)) }
        print("enrol_s\t\(n)\t\(now() - t)")
        g.close()
    }
    var qrng = SeededRNG(seed: 77)
    let queries: [[Float]] = (0..<100).map { _ in
        let c = Int(qrng.next() % UInt64(n))
        return kind == "random" ? (0..<dim).map { _ in Float(qrng.normal()) } : (0..<dim).map { centres[(c / 10) * dim + $0] + 0.8 * Float(qrng.normal()) }
    }
    for suffix in [".hnsw", ".hnsw.meta"] { unlink(path + suffix) }
    var t = now()
    let built = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(searchThreads: buildThreads,
                                  index: .hnsw(HNSWParameters(m: m, efConstruction: efc, efSearch: efs[0]))))
    built.close()
    print("build_s\t\(n)\t\(kind)\tM \(m) ef_construction \(efc), \(buildThreads) threads (includes writing the graph)\t\(now() - t)")
    print("graph_bytes\t\(try ReadableFile(path: path + ".hnsw").size)\tlog_bytes\t\(try ReadableFile(path: path).size)")
    let exact = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true))
    var graphs: [Gallery] = []
    for ef in efs {
        t = now()
        let g = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true, index: .hnsw(HNSWParameters(m: m, efConstruction: efc, efSearch: ef))))
        guard g.graphLoaded else { print("graph not loaded: \(g.graphProblem ?? "?")"); exit(1) }
        print("load_s\tef \(ef)\t\(now() - t)")
        graphs.append(g)
    }
    func block(_ g: Gallery) throws -> (ms: Double, labels: [[String]]) {
        let t = now()
        let labels = try queries.map { try g.search(queries: $0, k: 10, threshold: 0.5)[0].map(\.label) }
        return ((now() - t) / Double(queries.count) * 1000, labels)
    }
    var exactMs: [Double] = [], graphMs = [[Double]](repeating: [], count: efs.count)
    var truth: [[String]] = [], recalls = [Double](repeating: 0, count: efs.count)
    for _ in 0..<rounds {
        let e = try block(exact)
        exactMs.append(e.ms); truth = e.labels
        for (i, g) in graphs.enumerated() {
            let r = try block(g)
            graphMs[i].append(r.ms)
            recalls[i] = Double(zip(truth, r.labels).reduce(0) { $0 + Set($1.0).intersection($1.1).count }) / Double(10 * queries.count)
        }
    }
    func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
    print("exact\t\(n)\t\(kind)\tms/query \(median(exactMs))")
    for (i, ef) in efs.enumerated() {
        let ratios = zip(exactMs, graphMs[i]).map { $0 / $1 }
        print("hnsw\t\(n)\t\(kind)\tef \(ef)\tms/query \(median(graphMs[i]))\texact/hnsw \(median(ratios)) (\(ratios.min()!)–\(ratios.max()!))\trecall@10 \(recalls[i])")
    }
}
