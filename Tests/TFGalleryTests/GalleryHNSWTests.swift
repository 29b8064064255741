import Foundation
import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery

private typealias F = GalleryFixture

/// The HNSW index (`GalleryIndex.hnsw`): recall against the exact scan, consistency with the
/// log through enrol, remove and reopen, and refusal of damaged or stale graph files.
final class GalleryHNSWTests: XCTestCase {
    static let hnsw = HNSWParameters(m: 16, efConstruction: 100, efSearch: 64)

    func options(_ p: HNSWParameters = hnsw, threads: Int = 2) -> GalleryOptions {
        GalleryOptions(searchThreads: threads, index: .hnsw(p))
    }

    /// Recall@10 (identity labels) of the graph against the exact scan of the same file at each
    /// of `efSearch`: the graph is built (on one thread, so it is the same every run) at the first
    /// open and loaded from its file at the later ones.
    func recall(rows: [Float], dim: Int, queries: [Float], efSearch: [Int]) throws -> [Double] {
        let dir = try F.memoryFolder(); defer { Reference.removeTree(dir) }
        let fp = try GalleryFingerprint(architecture: "hnsw", embeddingSize: dim, weightsHash: 1)
        let path = dir + "/g.tfg"
        let exact = try Gallery.open(path: path, fingerprint: fp)
        let n = rows.count / dim
        for i in 0..<n { try exact.enrol(label: "r\(i)", embeddings: Array(rows[(i * dim)..<((i + 1) * dim)])) }
        let truth = try exact.search(queries: queries, k: 10, threshold: 0)
        exact.close()
        return try efSearch.enumerated().map { i, ef in
            var p = GalleryHNSWTests.hnsw
            p.efSearch = ef
            let g = try Gallery.open(path: path, fingerprint: fp, options: options(p, threads: 1))
            defer { g.close() }
            XCTAssertEqual(g.graphLoaded, i > 0)
            XCTAssertNil(g.graphProblem)
            return try recall(truth: truth, found: try g.search(queries: queries, k: 10, threshold: 0))
        }
    }

    func recall(truth: [[GalleryMatch]], found: [[GalleryMatch]]) throws -> Double {
        var hits = 0
        for (a, b) in zip(truth, found) {
            hits += Set(a.map(\.label)).intersection(b.map(\.label)).count
            // exact re-scoring: a label both found has the same score
            let exactScore = Dictionary(uniqueKeysWithValues: a.map { ($0.label, $0.score) })
            for m in b { if let s = exactScore[m.label] { XCTAssertEqual(m.score, s, accuracy: 1e-6) } }
        }
        return Double(hits) / Double(10 * truth.count)
    }

    /// 20 000 rows of dimension 128: random unit vectors (the hardest case for a graph) and 200
    /// clusters of 100 (centre + noise, queries new members). Bounds are the values measured
    /// here (see the printout) minus 0.02.
    func testRecallOnRandomAndClusteredRows() throws {
        let dim = 128, n = 20_000
        let random = F.vectors(n, dim: dim, seed: 5)
        let queries = F.vectors(100, dim: dim, seed: 6)
        let centres = F.vectors(200, dim: dim, seed: 7)
        var rng = SeededRNG(seed: 8)
        func member(_ c: Int) -> [Float] { (0..<dim).map { centres[c * dim + $0] + 0.6 * Float(rng.normal()) } }
        let clustered = (0..<n).flatMap { member($0 % 200) }
        let clusterQueries = (0..<100).flatMap { member($0 * 2) }
        var measured: [String: Double] = [:]
        let efs = [32, 128]
        let r = try recall(rows: random, dim: dim, queries: queries, efSearch: efs)
        let c = try recall(rows: clustered, dim: dim, queries: clusterQueries, efSearch: efs)
        for (i, ef) in efs.enumerated() { measured["random ef \(ef)"] = r[i]; measured["clustered ef \(ef)"] = c[i] }
        print("HNSW recall@10 vs exact, 20 000 × 128, M 16, ef_construction 100: \(measured.sorted { $0.key < $1.key })")
        XCTAssertGreaterThanOrEqual(measured["random ef 32"]!, 0.29)
        XCTAssertGreaterThanOrEqual(measured["random ef 128"]!, 0.66)
        XCTAssertGreaterThanOrEqual(measured["clustered ef 32"]!, 0.97)
        XCTAssertGreaterThanOrEqual(measured["clustered ef 128"]!, 0.98)
    }

    /// Unit row `i` of a set of small-gallery vectors (dimension 16).
    static func row(_ i: Int) -> [Float] { F.vectors(1, seed: 1000 + UInt64(i)) }

    /// Every live identity found as its own best match (a gallery this small is searched
    /// completely by the beam), and no removed one returned.
    func checkSelfMatches(_ g: Gallery, live: [Int], removed: Set<String>, file: StaticString = #filePath, line: UInt = #line) throws {
        let results = try g.search(queries: live.flatMap { GalleryHNSWTests.row($0) }, k: 5, threshold: 0.999)
        for (i, matches) in zip(live, results) {
            XCTAssertEqual(matches.first?.label, "p\(i)", file: file, line: line)
            XCTAssertEqual(matches.first?.score ?? 0, 1, accuracy: 1e-5, file: file, line: line)
            XCTAssertEqual(matches.first?.passes, true, file: file, line: line)
            XCTAssertTrue(matches.allSatisfy { !removed.contains($0.label) }, file: file, line: line)
        }
    }

    func testEnrolRemoveReopenStayInStepWithTheLog() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        var g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
        for i in 0..<300 { try g.enrol(label: "p\(i)", embeddings: GalleryHNSWTests.row(i)) }
        try g.remove(label: "p3")
        try g.remove(ids: try g.entryIDs(of: "p5") + (try g.entryIDs(of: "p7")))
        var removed: Set<String> = ["p3", "p5", "p7"]
        var live = (0..<300).filter { !removed.contains("p\($0)") }
        try checkSelfMatches(g, live: live, removed: removed)
        g.close()
        XCTAssertTrue(FileManager.default.fileExists(atPath: GalleryGraphFile.path(of: path)))

        // changed with the exact index (the graph file is not touched): the reopened graph catches up
        g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        for i in 300..<340 { try g.enrol(label: "p\(i)", embeddings: GalleryHNSWTests.row(i)) }
        try g.remove(label: "p10"); try g.remove(label: "p310")
        g.close()
        removed.formUnion(["p10", "p310"])
        live = (0..<340).filter { !removed.contains("p\($0)") }
        g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
        XCTAssertTrue(g.graphLoaded)
        XCTAssertNil(g.graphProblem)
        try checkSelfMatches(g, live: live, removed: removed)

        // compaction rewrites the log; the graph is written again and still loads; once removed
        // nodes are as many as live ones it is rebuilt without them
        g.close()
        var noAutoCompaction = options()
        noAutoCompaction.compactionFraction = 1
        g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: noAutoCompaction)
        for i in 100..<150 { try g.remove(label: "p\(i)"); removed.insert("p\(i)") }
        try g.compact()
        XCTAssertEqual(g.graph?.nodeCount, 339, "55 removed: kept as waypoints (p310 came and went while the graph was closed: never added)")
        for i in 150..<270 { try g.remove(label: "p\(i)"); removed.insert("p\(i)") }
        try g.compact()
        live = (0..<340).filter { !removed.contains("p\($0)") }
        XCTAssertEqual(g.graph?.nodeCount, live.count, "175 removed: rebuilt")
        g.close()
        g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
        XCTAssertTrue(g.graphLoaded, g.graphProblem ?? "")
        try checkSelfMatches(g, live: live, removed: removed)
        XCTAssertEqual(g.count, live.count)
        g.close()
    }

    /// A damaged graph or meta file, or one of another log, is refused and the graph rebuilt.
    func testDamagedOrStaleGraphIsRebuilt() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        func make() throws {
            let g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
            for i in 0..<200 { try g.enrol(label: "p\(i)", embeddings: GalleryHNSWTests.row(i)) }
            g.close()
        }
        func reopen(expect problem: String) throws {
            let g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
            XCTAssertFalse(g.graphLoaded)
            XCTAssertTrue(g.graphProblem?.contains(problem) == true, "\(g.graphProblem ?? "nil") lacks '\(problem)'")
            try checkSelfMatches(g, live: Array(0..<200), removed: [])
            g.close()
            let again = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
            XCTAssertTrue(again.graphLoaded, "the rebuilt graph was written")
            again.close()
        }
        try make()
        let graphPath = GalleryGraphFile.path(of: path), metaPath = GalleryGraphFile.metaPath(of: path)
        var graph = F.bytes(graphPath)
        graph[graph.count / 2] ^= 0x40
        F.write(graph, to: graphPath)
        try reopen(expect: "damaged (size or checksum)")
        var meta = F.bytes(metaPath)
        meta[20] ^= 1
        F.write(meta, to: metaPath)
        try reopen(expect: "checksum mismatch")
        F.write(Array(F.bytes(graphPath).dropLast(7)), to: graphPath)
        try reopen(expect: "damaged (size or checksum)")
        // another log under the same name: the old graph's log bytes are not this log's
        let oldGraph = F.bytes(graphPath), oldMeta = F.bytes(metaPath)
        for suffix in ["", ".snap", ".hnsw", ".hnsw.meta"] { unlink(path + suffix) }
        let other = try Gallery.open(path: path, fingerprint: F.fingerprint)
        for i in 0..<200 { try other.enrol(label: "p\(i)", embeddings: GalleryHNSWTests.row(500 + i)) }
        other.close()
        F.write(oldGraph, to: graphPath); F.write(oldMeta, to: metaPath)
        // (the rule is the snapshot's: the CRC of the last 4 KB of the log bytes the graph covers)
        let stale = try Gallery.open(path: path, fingerprint: F.fingerprint, options: options())
        XCTAssertFalse(stale.graphLoaded)
        XCTAssertTrue(stale.graphProblem?.contains("stale") == true, stale.graphProblem ?? "nil")
        stale.close()
    }

    /// The shim's own checks, behind the checksum: a graph file whose layout or links are wrong
    /// is refused by `HNSWGraph.load` (never searched out of bounds).
    func testShimRefusesBadGraphFiles() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let p = GalleryHNSWTests.hnsw
        let g = try HNSWGraph.create(dim: F.dim, parameters: p, seed: 1)
        let rows = (0..<50).flatMap { GalleryHNSWTests.row($0).normalizedForTest() }
        try rows.withUnsafeBufferPointer { try g.add($0.baseAddress!, labels: (0..<50).map { UInt64($0) }, threads: 1) }
        let good = dir + "/good.hnsw"
        try g.save(path: good)
        XCTAssertEqual(try HNSWGraph.load(path: good, dim: F.dim, parameters: p).liveLabels().sorted(), (0..<50).map { UInt64($0) })
        var other = p; other.m = 8
        XCTAssertThrowsError(try HNSWGraph.load(path: good, dim: F.dim, parameters: other))
        XCTAssertThrowsError(try HNSWGraph.load(path: good, dim: 32, parameters: p))
        let bytes = F.bytes(good)
        func refused(_ b: [UInt8], _ what: String) {
            F.write(b, to: dir + "/bad.hnsw")
            XCTAssertThrowsError(try HNSWGraph.load(path: dir + "/bad.hnsw", dim: F.dim, parameters: p), what)
        }
        var link = bytes
        for i in 100..<104 { link[i] = 0xFF }  // node 0's first base-layer link (after the 96-byte header and its count)
        link[96] = max(link[96], 1)
        refused(link, "a link past the nodes")
        refused(Array(bytes.prefix(50)), "a header cut short")
        refused(Array(bytes.dropLast(3)), "a file cut short")
        refused(bytes + [0, 0, 0, 0], "bytes past the nodes")
        var count = bytes
        count[16 + 7] = 0x7F  // the node count's top byte
        refused(count, "a huge node count")
        refused([], "an empty file")
    }
}

private extension Array where Element == Float {
    func normalizedForTest() -> [Float] {
        let n = (self.reduce(0) { $0 + $1 * $1 }).squareRoot()
        return self.map { $0 / n }
    }
}
