import Foundation
import TFCore
import TFModel

/// Paths of the shared reference fixtures: `<repo>/../shared`, found from this file's location.
public enum Reference {
    public static let repoRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)  // Tests/TFTestSupport/Reference.swift
        return parts.joined(separator: "/")
    }()

    public static let shared = repoRoot + "/../shared"
    public static func path(_ relative: String) -> String { shared + "/reference/" + relative }

    public static func load(_ relative: String) throws -> NPYArray { try NPYArray(path: path(relative) + ".npy") }

    /// The official tiny configuration of `reference/tiny`.
    public static let tinyConfig = ViTConfig(arch: "custom", embedDim: 64, depth: 2, numHeads: 4, mlpHiddenDim: 256,
                                             embeddingSize: 32)

    /// The tiny reference model built from `reference/<set>/param/*.npy` by official name.
    public static func tinyModel(set: String = "tiny") throws -> TransFaceModel {
        let builder = try ModelBuilder(config: tinyConfig)
        for e in builder.layout.entries {
            try builder.setTensor(e.name, try load("\(set)/param/\(e.name)").values)
        }
        return try builder.build()
    }

    /// A new scratch folder under the system's temporary folder; remove it with `removeTree`.
    public static func temporaryFolder() throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("transface-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    public static func removeTree(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
