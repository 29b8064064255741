import Foundation
import TFCore
import TFTestSupport
@testable import TFGallery

enum GalleryFixture {
    static let dim = 16
    static let fingerprint = try! GalleryFingerprint(architecture: "test D16", embeddingSize: dim, weightsHash: 0x1234_5678_9abc_def0)
    static let otherModel = try! GalleryFingerprint(architecture: "test D16", embeddingSize: dim, weightsHash: 0xdead_beef)

    /// `n` × `dim` standard-normal floats from `seed` (not normalised).
    static func vectors(_ n: Int, dim: Int = dim, seed: UInt64) -> [Float] {
        var rng = SeededRNG(seed: seed)
        return (0..<(n * dim)).map { _ in Float(rng.normal()) }
    }

    static func folder() throws -> String { try Reference.temporaryFolder() }

    /// A folder on tmpfs (where fsync is free) for tests that enrol thousands of identities.
    static func memoryFolder() throws -> String {
        let path = "/dev/shm/transface-gallery-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func bytes(_ path: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path) ?? Data()) }

    static func write(_ bytes: [UInt8], to path: String) { _ = FileManager.default.createFile(atPath: path, contents: Data(bytes)) }

    /// Label → count, for comparing gallery states.
    static func counts(_ g: Gallery) throws -> [String: Int] {
        Dictionary(uniqueKeysWithValues: try g.list().map { ($0.label, $0.count) })
    }
}
