import TFCore

/// Detector files (`.tfd`): the model file container (`TensorContainer`, magic "TFMODEL\0")
/// whose header says kind detector and holds the `DetectorConfig`, with exactly the tensors of
/// `DetectorModel.layout` in that order, float32.
public enum DetectorModelFile {
    /// Writes `model` atomically (a crash leaves the old file or none); `metadata` is stored as
    /// given (provenance: source, licence).
    public static func save(_ model: DetectorModel, to path: String, metadata: [(key: String, value: String)] = []) throws {
        let layout = DetectorModel.layout
        let all = layout.flatMap { model.values($0.name) }
        let header = ModelHeader(formatVersion: TensorContainer.formatVersion, producer: "libtransface \(LibraryVersion.string)",
                                 detector: model.config, metadata: metadata.map { .init(key: $0.key, value: $0.value) })
        try all.withUnsafeBufferPointer { buffer in
            var start = 0
            let tensors = layout.map { e -> TensorContainer.Tensor in
                let count = e.shape.reduce(1, *)
                defer { start += count }
                return .init(name: e.name, shape: e.shape, values: UnsafeBufferPointer(rebasing: buffer[start..<(start + count)]))
            }
            try TensorContainer.write(.model, header: header, tensors: tensors, to: path)
        }
    }

    /// Loads a detector; every problem is a thrown error naming the file and what is wrong (an
    /// embedding model: "is a face embedding model, not a detector").
    public static func load(path: String, verifyChecksums: Bool = true) throws -> DetectorModel {
        try read(try TensorContainer.open(.model, path: path, verifyChecksums: verifyChecksums), verifyChecksums: verifyChecksums)
    }

    /// The detector in an opened container.
    public static func read(_ opened: TensorContainer.Opened, verifyChecksums: Bool = true) throws -> DetectorModel {
        try opened.require(.detector)
        guard let config = opened.header.detector else { throw opened.bad("the detector's header has no detector config") }
        do { try config.validate() } catch let e as TransFaceError { throw opened.bad(e.message) }
        let byName = try opened.records(matching: DetectorModel.layout, of: "an MTCNN detector")
        var tensors: [String: DetectorModel.Tensor] = [:]
        for e in DetectorModel.layout {
            var values = [Float](repeating: 0, count: e.shape.reduce(1, *))
            try values.withUnsafeMutableBufferPointer { try opened.read(byName[e.name]!, into: $0, verify: verifyChecksums) }
            tensors[e.name] = .init(shape: e.shape, values: values)
        }
        do { return try DetectorModel(config: config, tensors: tensors) } catch let e as TransFaceError { throw opened.bad(e.message) }
    }
}
