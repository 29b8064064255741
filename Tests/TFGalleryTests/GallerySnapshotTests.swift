import Foundation
import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery

/// The snapshot beside the log: written by close and compaction, used at open when it matches
/// the log, and otherwise (stale, damaged, truncated, another gallery's) ignored for a replay.
final class GallerySnapshotTests: XCTestCase {
    typealias F = GalleryFixture
    let always = GalleryOptions(snapshotBytes: 0)

    /// Everything a caller can see of a gallery.
    func state(_ g: Gallery) throws -> String {
        let list = try g.list()
        let ids = try list.map { try g.entryIDs(of: $0.label) }
        let hits = try g.search(queries: F.vectors(3, seed: 77), k: 5, threshold: 0.1)
        return "\(list) \(ids) \(hits) \(g.count) \(g.removedInFile)"
    }

    /// The state of the log alone: opened with the snapshot moved away.
    func replayed(_ path: String) throws -> String {
        let snap = GallerySnapshot.path(of: path)
        rename(snap, snap + ".away"); defer { rename(snap + ".away", snap) }
        let g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(g.snapshotEnd, 0)
        return try state(g)
    }

    func fill(_ g: Gallery, from: Int, to: Int) throws {
        for i in from..<to { try g.enrol(label: "p\(i % 150)", embeddings: F.vectors(1 + i % 3, seed: UInt64(i)), metadata: ["n": "\(i)"]) }
    }

    func testSnapshotOpensToTheLogsState() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        var g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: always)
        try fill(g, from: 0, to: 300)
        try g.remove(label: "p7")
        try g.remove(ids: [3, 4, 100])
        g.close()
        XCTAssertEqual(access(GallerySnapshot.path(of: path), F_OK), 0, "close writes the snapshot")
        g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
        XCTAssertNil(g.snapshotProblem)
        XCTAssertEqual(g.snapshotEnd, UInt64(F.bytes(path).count))
        XCTAssertEqual(try state(g), try replayed(path))
        // more records after it, closed without a new snapshot: it covers a prefix, the rest is replayed
        g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(snapshotBytes: .max))
        try fill(g, from: 300, to: 340)
        try g.remove(label: "p9")
        let ids = try g.enrol(label: "late", embeddings: F.vectors(2, seed: 5))
        g.close()
        g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        XCTAssertGreaterThan(g.snapshotEnd, 0)
        XCTAssertLessThan(g.snapshotEnd, UInt64(F.bytes(path).count))
        XCTAssertEqual(try g.entryIDs(of: "late"), ids)
        XCTAssertEqual(try state(g), try replayed(path))
        // a writer opened from the snapshot keeps going: ids continue, removals find their rows
        let more = try g.enrol(label: "later", embeddings: F.vectors(1, seed: 6))
        XCTAssertEqual(more, [ids.last! + 1])
        try g.remove(ids: ids)
        g.close()
        let after = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(try after.entryIDs(of: "late"), [])
        XCTAssertEqual(try state(after), try replayed(path))
    }

    func testStaleDamagedOrForeignSnapshotsFallBackToReplay() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg", snap = GallerySnapshot.path(of: path)
        var g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: always)
        try fill(g, from: 0, to: 200)
        g.close()
        let good = F.bytes(snap)
        let expected = try replayed(path)
        func check(_ what: String, problem: String) throws {
            let g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
            XCTAssertEqual(g.snapshotEnd, 0, what)
            XCTAssertTrue(g.snapshotProblem?.contains(problem) == true, "\(what): \(g.snapshotProblem ?? "nil")")
            XCTAssertEqual(try state(g), expected, what)
        }
        // every flipped byte of the fixed part and the log header copy, every 61st of the rest
        // (rows, ids, identities, identity table), and truncations
        for i in Array(0..<160) + Array(stride(from: 160, to: good.count, by: 61)) {
            var b = good
            b[i] ^= 0x10
            F.write(b, to: snap)
            try check("byte \(i) flipped", problem: "snapshot")
        }
        for length in [0, 50, 99, 100, good.count / 2, good.count - 1] {
            F.write(Array(good[0..<length]), to: snap)
            try check("cut to \(length)", problem: "snapshot")
        }
        F.write(good + [0], to: snap)
        try check("one byte longer", problem: "sizes")
        // another gallery's snapshot (same model, other entries)
        let other = dir + "/other.tfg"
        let o = try Gallery.open(path: other, fingerprint: F.fingerprint, options: always)
        try fill(o, from: 1000, to: 1200)
        o.close()
        F.write(F.bytes(GallerySnapshot.path(of: other)), to: snap)
        try check("another gallery's", problem: "stale")
        // the log compacted after the snapshot: the old one is stale
        g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(snapshotBytes: .max))
        try g.compact()
        XCTAssertNotEqual(access(snap, F_OK), 0, "compaction drops the snapshot it made stale")
        g.close()
        F.write(good, to: snap)
        try check("the log compacted", problem: "stale")
        // the log cut below the snapshot's end (a torn tail can only be after it, but a copy can be anything)
        var log = F.bytes(path)
        log.removeLast(30)
        F.write(log, to: path)
        let cut = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(cut.snapshotEnd, 0)
        XCTAssertGreaterThan(cut.discardedTailBytes, 0)
    }

    /// Compaction writes a fresh snapshot of the rewritten log (at `snapshotBytes` 0).
    func testCompactionWritesASnapshot() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        let g = try Gallery.open(path: path, fingerprint: F.fingerprint, options: always)
        try fill(g, from: 0, to: 200)
        for i in 0..<100 { try g.remove(label: "p\(i)") }
        try g.compact()
        XCTAssertEqual(g.snapshotEnd, UInt64(F.bytes(path).count))
        let reader = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(reader.snapshotEnd, UInt64(F.bytes(path).count), reader.snapshotProblem ?? "")
        XCTAssertEqual(try state(reader), try replayed(path))
        XCTAssertEqual(try reader.list().count, 50)
    }
}
