import CHNSW
import TFCore

/// An hnswlib graph over unit float32 rows labelled by entry id (the `CHNSW` shim); errors
/// become `TransFaceError`. Searches may run concurrently; every other call needs exclusivity
/// (the gallery's write lock).
final class HNSWGraph {
    let dim: Int
    let parameters: HNSWParameters
    private let handle: OpaquePointer

    private init(dim: Int, parameters: HNSWParameters, handle: OpaquePointer) {
        self.dim = dim
        self.parameters = parameters
        self.handle = handle
    }

    deinit { chnsw_free(handle) }

    private static func call(_ what: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var message = [CChar](repeating: 0, count: 512)
        let status = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard status == 0 else { throw TransFaceError.io("\(what): \(String(cString: message))") }
    }

    /// An empty graph; `seed` draws the node levels.
    static func create(dim: Int, parameters p: HNSWParameters, seed: UInt64) throws -> HNSWGraph {
        var handle: OpaquePointer?
        try call("HNSW graph") { chnsw_create(Int32(dim), Int32(p.m), Int32(p.efConstruction), Int32(p.efSearch), seed, &handle, $0, $1) }
        return HNSWGraph(dim: dim, parameters: p, handle: handle!)
    }

    /// The graph saved at `path`; throws unless its layout matches `dim` and `parameters.m` and its links are in range.
    static func load(path: String, dim: Int, parameters p: HNSWParameters) throws -> HNSWGraph {
        var handle: OpaquePointer?
        try call("HNSW graph '\(path)'") { chnsw_load(path, Int32(dim), Int32(p.m), Int32(p.efSearch), &handle, $0, $1) }
        return HNSWGraph(dim: dim, parameters: p, handle: handle!)
    }

    func save(path: String) throws {
        try HNSWGraph.call("HNSW graph '\(path)'") { chnsw_save(handle, path, $0, $1) }
    }

    /// Adds `labels.count` rows (unit float32, `dim` each) on `threads` threads.
    func add(_ rows: UnsafePointer<Float>, labels: [UInt64], threads: Int) throws {
        guard !labels.isEmpty else { return }
        try HNSWGraph.call("HNSW add") { e, n in labels.withUnsafeBufferPointer { chnsw_add(handle, rows, $0.baseAddress!, labels.count, Int32(threads), e, n) } }
    }

    func markDeleted(_ labels: [UInt64]) throws {
        guard !labels.isEmpty else { return }
        try HNSWGraph.call("HNSW remove") { e, n in labels.withUnsafeBufferPointer { chnsw_mark_deleted(handle, $0.baseAddress!, labels.count, e, n) } }
    }

    /// Up to `k` live labels nearest to the unit `query`, best first.
    func search(_ query: UnsafePointer<Float>, k: Int) throws -> [UInt64] {
        var labels = [UInt64](repeating: 0, count: k)
        var count = 0
        try HNSWGraph.call("HNSW search") { e, n in labels.withUnsafeMutableBufferPointer { chnsw_search(handle, query, k, $0.baseAddress!, &count, e, n) } }
        return Array(labels.prefix(count))
    }

    /// Labels not marked deleted.
    func liveLabels() -> [UInt64] {
        var count = 0
        _ = chnsw_live_labels(handle, nil, 0, &count)
        var labels = [UInt64](repeating: 0, count: count)
        _ = labels.withUnsafeMutableBufferPointer { chnsw_live_labels(handle, $0.baseAddress, count, &count) }
        return labels
    }

    /// Nodes stored, live and deleted.
    var nodeCount: Int { chnsw_node_count(handle) }
}

/// Reading a graph file on its own, for the fuzz harness: the shim's checked loader, then a
/// search and the live labels.
public enum HNSWGraphFile {
    /// Loads the graph at `path` (expected `dim`, links `m`), searches it once and describes it;
    /// a damaged file is a thrown error.
    public static func inspect(path: String, dim: Int, m: Int) throws -> String {
        let g = try HNSWGraph.load(path: path, dim: dim, parameters: HNSWParameters(m: m, efConstruction: 8, efSearch: 8))
        let query = (0..<dim).map { Float($0 % 3) - 1 }
        let norm = query.reduce(0) { $0 + $1 * $1 }.squareRoot()
        let found = try query.map { $0 / norm }.withUnsafeBufferPointer { try g.search($0.baseAddress!, k: 3) }
        return "graph of \(g.liveLabels().count) live nodes, \(found.count) found"
    }

    /// Saves at `path` a graph of `rows` (unit, `dim` each) labelled 0..., links `m`, with `deleted` marked.
    public static func make(path: String, dim: Int, m: Int, rows: [Float], deleted: [UInt64]) throws {
        let g = try HNSWGraph.create(dim: dim, parameters: HNSWParameters(m: m, efConstruction: 16, efSearch: 8), seed: 1)
        let n = rows.count / dim
        try rows.withUnsafeBufferPointer { try g.add($0.baseAddress!, labels: (0..<UInt64(n)).map { $0 }, threads: 1) }
        try g.markDeleted(deleted)
        try g.save(path: path)
    }
}
