import TFCore

/// A TransFace model: architecture, preprocessing, metadata and float32 weights in one slab
/// laid out by `layout`. Immutable once made; share it between threads.
public final class TransFaceModel {
    public let config: ViTConfig
    public let layout: ParameterLayout
    public let preprocess: Preprocess
    public let metadata: [(key: String, value: String)]
    /// Weights; mutate only through a `ModelBuilder` or a trainer that owns its own slab.
    public let parameters: FloatSlab

    public init(config: ViTConfig, preprocess: Preprocess, metadata: [(key: String, value: String)],
                parameters: FloatSlab) throws {
        try config.validate()
        try preprocess.validate(for: config)
        let layout = ParameterLayout(config: config)
        try require(parameters.count == layout.totalCount,
                    "parameter slab holds \(parameters.count) floats, the layout needs \(layout.totalCount)")
        self.config = config
        self.layout = layout
        self.preprocess = preprocess
        self.metadata = metadata
        self.parameters = parameters
    }

    /// A copy of one tensor's values, by official name.
    public func tensor(_ name: String) throws -> [Float] {
        let e = try layout.entry(name)
        return Array(parameters.view(e.offset, e.count))
    }

    public func metadataValue(_ key: String) -> String? { metadata.first { $0.key == key }?.value }
}
