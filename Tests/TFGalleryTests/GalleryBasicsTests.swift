import TFCore
import TFModel
import TFTestSupport
import XCTest
@testable import TFGallery

final class GalleryBasicsTests: XCTestCase {
    typealias F = GalleryFixture

    func testEnrolListSearchRemoveAndReopen() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        let alice = F.vectors(3, seed: 1), bob = F.vectors(2, seed: 2)
        var g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        XCTAssertEqual(try g.enrol(label: "alice", embeddings: alice, metadata: ["dept": "a"]), [0, 1, 2])
        XCTAssertEqual(try g.enrol(label: "bob", embeddings: bob), [3, 4])
        try g.enrol(label: "alice", embeddings: F.vectors(1, seed: 3), metadata: ["dept": "b", "x": "y"])
        XCTAssertEqual(g.count, 6)
        XCTAssertEqual(try g.list(), [GalleryIdentity(label: "alice", count: 4, metadata: ["dept": "b", "x": "y"]),
                                      GalleryIdentity(label: "bob", count: 2, metadata: [:])])
        // a scaled copy of bob's second embedding: cosine 1 with entry 4
        let query = Array(bob[F.dim..<(2 * F.dim)]).map { $0 * 7 }
        let hits = try g.search(queries: query, k: 5, threshold: 0.99)
        XCTAssertEqual(hits.count, 1)
        XCTAssertEqual(hits[0].map(\.label), ["bob", "alice"])  // one hit per identity
        XCTAssertEqual(hits[0][0].entryID, 4)
        XCTAssertEqual(hits[0][0].score, 1, accuracy: 1e-5)
        XCTAssertTrue(hits[0][0].passes)
        XCTAssertFalse(hits[0][1].passes)
        g.close()
        XCTAssertThrowsError(try g.list())

        g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        XCTAssertEqual(g.count, 6)
        XCTAssertEqual(try g.search(queries: query, k: 1, threshold: 0.5), hits.map { Array($0.prefix(1)) })
        XCTAssertEqual(try g.remove(label: "alice"), 4)
        XCTAssertThrowsError(try g.remove(label: "alice")) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .notFound) }
        try g.remove(ids: [3])
        XCTAssertThrowsError(try g.remove(ids: [3, 4])) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .notFound) }
        XCTAssertEqual(try g.entryIDs(of: "bob"), [4])
        g.close()
        g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        XCTAssertEqual(try F.counts(g), ["bob": 1])
        XCTAssertEqual(try g.enrol(label: "carol", embeddings: F.vectors(1, seed: 4)), [6])  // ids are never reused
        g.close()
    }

    func testEmbeddingsAreNormalisedAndBadInputRefused() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let g = try Gallery.open(path: dir + "/g.tfg", fingerprint: F.fingerprint)
        try g.enrol(label: "a", embeddings: F.vectors(1, seed: 5).map { $0 * 100 })
        XCTAssertEqual(g.store.row(0).withMemoryRebound(to: Float.self, capacity: F.dim) { p in (0..<F.dim).reduce(0) { $0 + p[$1] * p[$1] } },
                       1, accuracy: 1e-5)
        for bad in [[Float](repeating: 0, count: F.dim), [Float](repeating: .nan, count: F.dim), [1, 2, 3], []] {
            XCTAssertThrowsError(try g.enrol(label: "b", embeddings: bad)) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .invalidArgument) }
        }
        XCTAssertThrowsError(try g.enrol(label: "", embeddings: F.vectors(1, seed: 1)))
        XCTAssertThrowsError(try g.search(queries: [1], k: 1, threshold: 0))
        XCTAssertThrowsError(try g.search(queries: F.vectors(1, seed: 1), k: 0, threshold: 0))
        XCTAssertEqual(g.count, 1)
    }

    func testModelGuardNamesBothFingerprints() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        let g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        try g.enrol(label: "a", embeddings: F.vectors(1, seed: 1))
        for attempt in [{ _ = try g.enrol(label: "b", embeddings: F.vectors(1, seed: 2), fingerprint: F.otherModel) },
                        { _ = try g.search(queries: F.vectors(1, seed: 2), k: 1, threshold: 0, fingerprint: F.otherModel) }] {
            XCTAssertThrowsError(try attempt()) { e in
                let m = (e as? TransFaceError)?.message ?? ""
                XCTAssertTrue(m.contains("12345678") && m.contains("deadbeef"), m)
            }
        }
        g.close()
        XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.otherModel)) { e in
            XCTAssertTrue("\(e)".contains("another model"), "\(e)")
        }
        let inspect = try Gallery.open(path: path, fingerprint: nil, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(inspect.fingerprint, F.fingerprint)
        XCTAssertThrowsError(try Gallery.open(path: dir + "/new.tfg", fingerprint: nil))
    }

    func testFingerprintOfAModel() throws {
        let builder = try ModelBuilder(config: ViTConfig(imgSize: 6, patchSize: 3, embedDim: 4, depth: 1, numHeads: 1, mlpHiddenDim: 8, embeddingSize: 4))
        builder.initializeWeights(seed: 1)
        let a = try GalleryFingerprint(model: try builder.build())
        XCTAssertEqual(a.embeddingSize, 4)
        XCTAssertEqual(a, try GalleryFingerprint(model: try builder.build()))
        builder.initializeWeights(seed: 2)
        let b = try GalleryFingerprint(model: try builder.build())
        XCTAssertEqual(a.architecture, b.architecture)
        XCTAssertNotEqual(a.weightsHash, b.weightsHash)
    }

    func testReadOnlyAndSecondWriterRefused() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))) {
            XCTAssertEqual(($0 as? TransFaceError)?.kind, .notFound)
        }
        let writer = try Gallery.open(path: path, fingerprint: F.fingerprint)
        try writer.enrol(label: "a", embeddings: F.vectors(2, seed: 1))
        // flock belongs to an open file description: a second open conflicts as another process would
        XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint)) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .io)
            XCTAssertTrue("\(e)".contains("open for writing in another process"), "\(e)")
        }
        let reader = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(reader.count, 2)
        XCTAssertThrowsError(try reader.enrol(label: "b", embeddings: F.vectors(1, seed: 2))) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .misuse) }
        writer.close()
        let second = try Gallery.open(path: path, fingerprint: F.fingerprint)  // the lock went with close
        XCTAssertEqual(second.count, 2)
    }

    func testCompactionKeepsLiveEntriesAndShrinksTheFile() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        let g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(compactionFraction: 2))
        for i in 0..<100 { try g.enrol(label: "p\(i % 10)", embeddings: F.vectors(2, seed: UInt64(i)), metadata: ["i": "\(i % 10)"]) }
        for i in 0..<7 { try g.remove(label: "p\(i)") }
        let before = try g.list()
        let query = F.vectors(3, seed: 77)
        let hits = try g.search(queries: query, k: 3, threshold: 0)
        XCTAssertEqual(g.removedInFile, 140)
        let size = F.bytes(path).count
        try g.compact()
        XCTAssertEqual(g.removedInFile, 0)
        XCTAssertLessThan(F.bytes(path).count, size / 3)
        try g.enrol(label: "new", embeddings: F.vectors(1, seed: 1000))
        g.close()
        let again = try Gallery.open(path: path, fingerprint: F.fingerprint)
        XCTAssertEqual(try again.list().filter { $0.label != "new" }, before)
        XCTAssertEqual(try again.search(queries: query, k: 3, threshold: 0).map { $0.filter { $0.label != "new" } }.map { Array($0.prefix(2)) },
                       hits.map { Array($0.prefix(2)) })
        XCTAssertEqual(try again.entryIDs(of: "new"), [200])
        // automatic compaction past the fraction
        let auto = try Gallery.open(path: dir + "/auto.tfg", fingerprint: F.fingerprint, options: GalleryOptions(compactionFraction: 0.5))
        for i in 0..<200 { try auto.enrol(label: "q\(i)", embeddings: F.vectors(1, seed: UInt64(i))) }
        for i in 0..<100 { try auto.remove(label: "q\(i)") }
        XCTAssertEqual(auto.removedInFile, 100)
        try auto.remove(label: "q100")
        XCTAssertEqual(auto.removedInFile, 0)
        XCTAssertEqual(auto.count, 99)
    }

    /// `list` is sorted once and kept, so every write must drop what it kept: after each
    /// enrolment, metadata change, removal and compaction it equals a fresh sort of the state.
    func testListFollowsEveryWrite() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let g = try Gallery.open(path: dir + "/g.tfg", fingerprint: F.fingerprint, options: GalleryOptions(compactionFraction: 1))
        var expected: [String: (Int, [String: String])] = [:]
        func check(_ what: String) throws {
            let want = expected.sorted { $0.key < $1.key }.map { GalleryIdentity(label: $0.key, count: $0.value.0, metadata: $0.value.1) }
            XCTAssertEqual(try g.list(), want, what)
            XCTAssertEqual(try g.list(), want, what + " (kept)")
        }
        try check("empty")
        for (i, label) in ["m", "c", "x", "a"].enumerated() {
            try g.enrol(label: label, embeddings: F.vectors(1 + i, seed: UInt64(i)))
            expected[label] = (1 + i, [:])
            try check("enrol \(label)")
        }
        try g.enrol(label: "c", embeddings: F.vectors(1, seed: 9), metadata: ["role": "staff"])
        expected["c"] = (3, ["role": "staff"])
        try check("more of c with metadata")
        try g.remove(label: "x")
        expected["x"] = nil
        try check("remove x")
        try g.remove(ids: [try g.entryIDs(of: "a")[0]])
        expected["a"]!.0 -= 1
        try check("remove one of a")
        try g.compact()
        try check("compact")
    }
}
