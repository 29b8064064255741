import Foundation
import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery

/// Stored rows (float32, float16, int8), the fused single-query scan over them, and files of
/// the previous version.
final class GalleryStorageTests: XCTestCase {
    typealias F = GalleryFixture

    func unitRows(_ n: Int, dim: Int, seed: UInt64) -> [Float] {
        var v = F.vectors(n, dim: dim, seed: seed)
        for r in 0..<n {
            let norm = (0..<dim).reduce(0.0) { $0 + Double(v[r * dim + $1]) * Double(v[r * dim + $1]) }.squareRoot()
            for j in 0..<dim { v[r * dim + j] = Float(Double(v[r * dim + j]) / norm) }
        }
        return v
    }

    /// Decoded rows are the values rounded as documented: float16 to nearest; int8 within half a
    /// step (max |x| / 127) plus the renormalising change of its scale, and of unit norm.
    func testEncodeDecodeRoundTrip() {
        let dim = 37, n = 5
        let x = unitRows(n, dim: dim, seed: 4)
        for storage in GalleryStorage.allCases {
            var stored = [UInt8](repeating: 0, count: n * storage.rowBytes(dim: dim))
            var back = [Float](repeating: 0, count: n * dim)
            stored.withUnsafeMutableBytes { encodeRows(x, rows: n, dim: dim, storage: storage, into: $0.baseAddress!) }
            stored.withUnsafeBytes { decodeRows($0.baseAddress!, rows: n, dim: dim, storage: storage, into: &back) }
            for r in 0..<n {
                let step = (0..<dim).map { abs(x[r * dim + $0]) }.max()! / 127
                let scale = stored.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: r * storage.rowBytes(dim: dim), as: Float.self) }
                for j in 0..<dim {
                    let i = r * dim + j
                    switch storage {
                    case .float32: XCTAssertEqual(back[i], x[i])
                    case .float16: XCTAssertEqual(back[i], Float(Float16(x[i])))
                    case .int8: XCTAssertEqual(back[i], x[i], accuracy: step * 0.5 * 1.0001 + abs(scale - step) * 127)
                    }
                }
                if storage == .int8 {
                    XCTAssertEqual(abs(scale - step) / step, 0, accuracy: 0.01)
                    XCTAssertEqual((0..<dim).reduce(0.0) { $0 + Double(back[r * dim + $1]) * Double(back[r * dim + $1]) }, 1, accuracy: 1e-5)
                }
            }
        }
    }

    /// The fused scan's score of every row equals the dot product of the query and the decoded
    /// row in Double within 1e-5, for dims that exercise every tail of its 32- and 16-lane steps.
    func testFusedScanScoresEveryRowExactly() {
        for storage in GalleryStorage.allCases {
            for dim in [1, 7, 16, 31, 32, 33, 48, 100, 512] {
                let n = 23
                let rows = unitRows(n, dim: dim, seed: UInt64(dim)), query = unitRows(1, dim: dim, seed: 99)
                var stored = [UInt8](repeating: 0, count: n * storage.rowBytes(dim: dim))
                var decoded = [Float](repeating: 0, count: n * dim)
                stored.withUnsafeMutableBytes { encodeRows(rows, rows: n, dim: dim, storage: storage, into: $0.baseAddress!) }
                stored.withUnsafeBytes { decodeRows($0.baseAddress!, rows: n, dim: dim, storage: storage, into: &decoded) }
                var heap = TopIdentities(k: n)
                let identity = (0..<n).map { Int32($0) }
                stored.withUnsafeBytes { s in
                    scanFused(query: query, dim: dim, slab: s.baseAddress!, storage: storage, rowIdentity: identity, rows: 0..<n, heap: &heap)
                }
                let hits = heap.sorted()
                XCTAssertEqual(hits.count, n)
                for hit in hits {
                    let expected = (0..<dim).reduce(0.0) { $0 + Double(query[$1]) * Double(decoded[hit.row * dim + $1]) }
                    XCTAssertEqual(Double(hit.score), expected, accuracy: 1e-5, "\(storage) dim \(dim) row \(hit.row)")
                }
                // rows 5..<18 only: the range is honoured
                var part = TopIdentities(k: n)
                stored.withUnsafeBytes { s in
                    scanFused(query: query, dim: dim, slab: s.baseAddress!, storage: storage, rowIdentity: identity, rows: 5..<18, heap: &part)
                }
                XCTAssertEqual(Set(part.sorted().map(\.row)), Set(5..<18))
            }
        }
    }

    /// An int8 gallery's file and memory are about a quarter of float32's (512-d: 516 of 2048
    /// bytes a row); float16's a half.
    func testFileSizesOfTheStorages() throws {
        let dir = try F.memoryFolder(); defer { Reference.removeTree(dir) }
        let fp = try GalleryFingerprint(architecture: "sizes", embeddingSize: 512, weightsHash: 3)
        var size: [GalleryStorage: Int] = [:]
        for storage in GalleryStorage.allCases {
            let g = try Gallery.open(path: dir + "/\(storage).tfg", fingerprint: fp, options: GalleryOptions(storage: storage))
            for i in 0..<200 { try g.enrol(label: "p\(i)", embeddings: F.vectors(1, dim: 512, seed: UInt64(i))) }
            XCTAssertEqual(g.store.rowBytes, [GalleryStorage.float32: 2048, .float16: 1024, .int8: 516][storage])
            g.close()
            size[storage] = F.bytes(dir + "/\(storage).tfg").count
        }
        let quarter = Double(size[.int8]!) / Double(size[.float32]!), half = Double(size[.float16]!) / Double(size[.float32]!)
        XCTAssertGreaterThan(quarter, 0.25); XCTAssertLessThan(quarter, 0.27)
        XCTAssertGreaterThan(half, 0.5); XCTAssertLessThan(half, 0.52)
    }

    /// A float32 gallery written by the previous release (file version 1: TFGalleryBench,
    /// labels "0" "1" "2", fingerprint "bench" D16 hash 42) opens, searches and takes new
    /// enrolments; new files are version 2; version 1 with the int8 code is refused.
    func testVersion1FilesStillRead() throws {
        let dir = try F.folder(); defer { Reference.removeTree(dir) }
        let path = dir + "/v1.tfg"
        let v1 = "VEZHQUxMUlkBAAAAMwAAAAAAAAAQAAAAKgAAAAAAAAAAAAAAAAAAAAUAYmVuY2jEEgteVEZHUgEAAABTAAAAT+fWPCiXq4IBAAAAAQAwAAAAAAAAAAAAAAAA0l4RPq3OrD6u/wo+LQsJv2Vrvj6bxDs+ud5hvrFydD6aWxk+UnT3PSlLPzy4+WU+KOWavnkOib3XzUq+xud7PlRGR1IBAAAAUwAAAJxQhgAZSI/jAQAAAAEAMQAAAAABAAAAAAAAAEbXDzw9YYS96PYwvrvVaL3c3+s6gYB5vU9wkj592GM+b2YZv6rD1b5nOB69fBq/vfNoQT2QvUQ9najvPj6te75URkdSAQAAAFMAAAC1AAz48owDIAEAAAABADIAAAAAAgAAAAAAAAAso+W9b0kbP8CkRD5Hnkk+XEscvtyQ+r5Dr0s9kJcEPdyZur7Uv0++R0CvvL+ij75dDO+81UToPL8hLTzV8hm+"
        let bytes = [UInt8](Data(base64Encoded: v1)!)
        XCTAssertEqual(bytes[8], 1)
        F.write(bytes, to: path)
        let fp = try GalleryFingerprint(architecture: "bench", embeddingSize: 16, weightsHash: 42)
        let x1: [Float] = [0.039722, -0.292457, -0.781908, -0.257192, 0.008142, -0.275603, 1.294064, 1.006724,
                           -2.711162, -1.889013, -0.174772, -0.42219, 0.213643, 0.217322, 2.117839, -1.112021]
        let reader = try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true))
        XCTAssertEqual(try reader.list().map(\.label), ["0", "1", "2"])
        XCTAssertEqual(reader.storage, .float32)
        let hit = try reader.search(queries: x1, k: 3, threshold: 0.99)[0]
        XCTAssertEqual(hit.map(\.label).first, "1")
        XCTAssertEqual(hit[0].score, 1, accuracy: 1e-6)
        XCTAssertTrue(hit[0].passes)
        let writer = try Gallery.open(path: path, fingerprint: fp)
        try writer.enrol(label: "3", embeddings: F.vectors(1, seed: 8))
        writer.close()
        XCTAssertEqual(try Gallery.open(path: path, fingerprint: fp, options: GalleryOptions(readOnly: true)).count, 4)
        // version 1 cannot say int8: the code is refused even with a valid header CRC
        var int8V1 = bytes
        int8V1[16] = GalleryStorage.int8.rawValue
        let headerSize = Int(int8V1[12])
        let crc = int8V1.withUnsafeBytes { crc32(UnsafeRawBufferPointer(rebasing: $0[0..<(headerSize - 4)])) }
        for i in 0..<4 { int8V1[headerSize - 4 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        F.write(int8V1, to: path)
        XCTAssertThrowsError(try Gallery.open(path: path, fingerprint: nil, options: GalleryOptions(readOnly: true))) {
            XCTAssertEqual(($0 as? TransFaceError)?.kind, .format)
            XCTAssertTrue("\($0)".contains("version 1"), "\($0)")
        }
        let fresh = dir + "/new.tfg"
        try Gallery.open(path: fresh, fingerprint: fp, options: GalleryOptions(storage: .int8)).close()
        XCTAssertEqual(F.bytes(fresh)[8], 2)
        XCTAssertEqual(try Gallery.open(path: fresh, fingerprint: fp).storage, .int8)
    }
}
