import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery
import TransFaceFuzzHarness

/// Torn writes and damage: every truncation and every flipped bit of a small gallery file.
final class GalleryDamageTests: XCTestCase {
    typealias F = GalleryFixture

    /// A gallery of 4 operations; returns its bytes, the file size after each operation (index 0:
    /// the bare header) and the label counts after each.
    func smallGallery(_ path: String) throws -> (bytes: [UInt8], ends: [Int], states: [[String: Int]]) {
        let g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        var ends = [F.bytes(path).count], states = [try F.counts(g)]
        try g.enrol(label: "ann", embeddings: F.vectors(2, seed: 1), metadata: ["k": "v"])
        ends.append(F.bytes(path).count); states.append(try F.counts(g))
        try g.enrol(label: "bo", embeddings: F.vectors(1, seed: 2))
        ends.append(F.bytes(path).count); states.append(try F.counts(g))
        try g.remove(ids: [0])
        ends.append(F.bytes(path).count); states.append(try F.counts(g))
        try g.enrol(label: "cy", embeddings: F.vectors(1, seed: 3))
        ends.append(F.bytes(path).count); states.append(try F.counts(g))
        g.close()
        return (F.bytes(path), ends, states)
    }

    func testTruncationAtEveryByte() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let (bytes, ends, states) = try smallGallery(dir + "/full.tfg")
        let path = dir + "/cut.tfg"
        for length in 0..<bytes.count {
            F.write(Array(bytes[0..<length]), to: path)
            if length < ends[0] {
                XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))) {
                    XCTAssertEqual(($0 as? TransFaceError)?.kind, .format, "length \(length): \($0)")
                }
                continue
            }
            let complete = ends.lastIndex { $0 <= length }!
            let reader = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
            XCTAssertEqual(try F.counts(reader), states[complete], "length \(length)")
            XCTAssertEqual(reader.discardedTailBytes, UInt64(length - ends[complete]))
            XCTAssertEqual(F.bytes(path).count, length, "a reader must not cut the tail")
            let writer = try Gallery.open(path: path, fingerprint: F.fingerprint)
            XCTAssertEqual(F.bytes(path), Array(bytes[0..<ends[complete]]), "the writer cuts exactly the torn tail")
            try writer.enrol(label: "after", embeddings: F.vectors(1, seed: 9))
            writer.close()
            XCTAssertEqual(try F.counts(try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true)))["after"], 1)
        }
    }

    /// A flipped bit is damage, not a torn write (which leaves zeros), wherever it is: in the
    /// last record too, whose frame or payload CRC then fails with no zero block in it.
    func testEveryFlippedBitIsRefused() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let (bytes, _, _) = try smallGallery(dir + "/full.tfg")
        let path = dir + "/flip.tfg"
        for i in 0..<bytes.count {
            for bit in [0, 5] {
                var damaged = bytes
                damaged[i] ^= UInt8(1 << bit)
                F.write(damaged, to: path)
                XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true)), "byte \(i)") {
                    XCTAssertTrue([.format, .invalidArgument].contains(($0 as? TransFaceError)?.kind), "byte \(i): \($0)")
                }
            }
        }
    }

    /// The last record torn by a power loss (some of its 512-byte blocks never written, so
    /// zeros) is dropped; the same record with one flipped bit instead is refused.
    func testTornLastRecordLeavesZeroBlocks() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/g.tfg"
        let g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        try g.enrol(label: "first", embeddings: F.vectors(3, seed: 1))
        let before = F.bytes(path).count
        try g.enrol(label: "big", embeddings: F.vectors(60, seed: 2))  // a record of 4 KB: several blocks
        g.close()
        let bytes = F.bytes(path)
        let firstBlock = (before / 512 + 1) * 512, lastBlock = (bytes.count - 1) / 512 * 512
        XCTAssertLessThan(firstBlock + 512, lastBlock)
        let damages: [(String, (inout [UInt8]) -> Void, Bool)] = [
            ("a whole block inside it zero", { for i in (firstBlock + 512)..<(firstBlock + 1024) { $0[i] = 0 } }, true),
            ("its last partial block zero", { for i in lastBlock..<$0.count { $0[i] = 0 } }, true),
            ("its frame and first part zero", { for i in before..<firstBlock { $0[i] = 0 } }, true),
            ("one flipped bit in its payload", { $0[firstBlock + 700] ^= 4 }, false),
            ("one flipped bit in its frame", { $0[before + 9] ^= 1 }, false),
            ("a block half zero", { for i in (firstBlock + 512)..<(firstBlock + 768) { $0[i] = 0 } }, false),
        ]
        for (what, damage, torn) in damages {
            var b = bytes
            damage(&b)
            F.write(b, to: path)
            if torn {
                let reader = try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true))
                XCTAssertEqual(try F.counts(reader), ["first": 3], what)
                XCTAssertEqual(reader.discardedTailBytes, UInt64(bytes.count - before), what)
            } else {
                XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint, options: GalleryOptions(readOnly: true)), what) {
                    XCTAssertEqual(($0 as? TransFaceError)?.kind, .format, what)
                    XCTAssertTrue("\($0)".contains("byte \(before)"), "\(what): \($0)")
                }
            }
        }
    }

    func testPowerLossTailsAndDamageInTheMiddle() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let (bytes, ends, states) = try smallGallery(dir + "/full.tfg")
        let path = dir + "/g.tfg"
        // zeros where the size grew but the data never reached the disk
        F.write(bytes + [UInt8](repeating: 0, count: 3000), to: path)
        var g = try Gallery.open(path: path, fingerprint: F.fingerprint)
        XCTAssertEqual(try F.counts(g), states.last!)
        XCTAssertEqual(g.discardedTailBytes, 3000)
        g.close()
        XCTAssertEqual(F.bytes(path), bytes)
        // a damaged record followed by an intact one: refused, the file untouched
        var middle = bytes
        middle[ends[1] + 30] ^= 1
        F.write(middle, to: path)
        XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint)) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .format)
            XCTAssertTrue("\(e)".contains("byte \(ends[1])"), "\(e)")
        }
        XCTAssertEqual(F.bytes(path), middle)
        // garbage then a valid record: refused
        let last = Array(bytes[ends[3]...])
        F.write(Array(bytes[0..<ends[3]]) + [UInt8](repeating: 0x5a, count: 40) + last, to: path)
        XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint))
        // not a gallery at all, or an empty file
        for junk in [[UInt8](), Array("hello world, not a gallery".utf8)] {
            F.write(junk, to: path)
            XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: F.fingerprint)) { XCTAssertEqual(($0 as? TransFaceError)?.kind, .format) }
        }
        g = try Gallery.open(path: dir + "/full.tfg", fingerprint: F.fingerprint)
        XCTAssertEqual(g.discardedTailBytes, 0)
    }

    /// Random mutations (bytes set, ranges cut, inserted or repeated) of a small gallery, with
    /// and without recomputed CRCs (`FuzzHarness.gallery`): each opens or is refused with a TransFaceError.
    func testRandomMutationsNeverCrash() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let (bytes, _, _) = try smallGallery(dir + "/full.tfg")
        let path = dir + "/m.tfg"
        var rng = SeededRNG(seed: 5)
        var opened = 0
        for round in 0..<3000 {
            var b = bytes
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 4 {
                case 0: b[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: b.removeSubrange(i..<min(b.count, i + Int(rng.next() % 40)))
                case 2: b.insert(contentsOf: (0..<Int(rng.next() % 40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: i)
                default: b += b[i..<min(b.count, i + Int(rng.next() % 200))]
                }
                if b.isEmpty { b = [0] }
            }
            if round % 2 == 1 {  // through the fuzz harness, which recomputes the CRCs first
                if case .accepted = try FuzzHarness.gallery.run(b) { opened += 1 }
                continue
            }
            F.write(b, to: path)
            do {
                let g = try Gallery.open(path: path, fingerprint: nil, options: GalleryOptions(readOnly: true))
                _ = try g.search(queries: F.vectors(1, dim: g.fingerprint.embeddingSize, seed: 1), k: 2, threshold: 0)
                opened += 1
            } catch is TransFaceError {}
        }
        XCTAssertGreaterThan(opened, 100)
    }
}
