import TFCore

/// A TransFace model: architecture, preprocessing, metadata and weights. Immutable once made;
/// share it between threads.
///
/// The weights are one float32 slab laid out by `layout`, except that a model loaded for
/// inference holds its block Linears packed (`packedBlocks`) instead: their slab regions are
/// left untouched (zero) and `copyTensor`/`copyParameters`/`withFloat32Parameters` give their values.
public final class TransFaceModel {
    public let config: ViTConfig
    public let layout: ParameterLayout
    public let preprocess: Preprocess
    public let metadata: [(key: String, value: String)]
    /// The float32 slab; the regions of the tensors in `packedBlocks` hold zeros. Mutate only
    /// through a `ModelBuilder` or a trainer that owns its own slab.
    public let slab: FloatSlab
    /// The block Linears packed for the matmul backend (nil: every tensor is in `slab`).
    public let packedBlocks: PackedBlockWeights?

    public init(config: ViTConfig, preprocess: Preprocess, metadata: [(key: String, value: String)],
                parameters: FloatSlab, packedBlocks: PackedBlockWeights? = nil) throws {
        try config.validate()
        try preprocess.validate(for: config)
        let layout = ParameterLayout(config: config)
        try require(parameters.count == layout.totalCount,
                    "parameter slab holds \(parameters.count) floats, the layout needs \(layout.totalCount)")
        try require(packedBlocks.map { $0.blocks.count == config.depth && $0.blocks.first?.fc1.outFeatures == config.mlpHiddenDim
                                        && $0.blocks.first?.qkv.inFeatures == config.embedDim } ?? true,
                    "packed block weights do not fit the architecture")
        self.config = config
        self.layout = layout
        self.preprocess = preprocess
        self.metadata = metadata
        self.slab = parameters
        self.packedBlocks = packedBlocks
    }

    /// The same weights with other metadata (no copy).
    public func replacingMetadata(_ metadata: [(key: String, value: String)]) throws -> TransFaceModel {
        try TransFaceModel(config: config, preprocess: preprocess, metadata: metadata, parameters: slab, packedBlocks: packedBlocks)
    }

    /// Writes the float32 values of tensor `e` to `out` (`e.count` floats).
    public func copyTensor(_ e: TensorEntry, into out: UnsafeMutablePointer<Float>) throws {
        if let packed = packedBlocks?.weight(e.name) {
            try packed.unpack(into: out)
        } else {
            out.update(from: slab.base + e.offset, count: e.count)
        }
    }

    /// A copy of one tensor's values, by official name.
    public func tensor(_ name: String) throws -> [Float] {
        let e = try layout.entry(name)
        var values = [Float](repeating: 0, count: e.count)
        try values.withUnsafeMutableBufferPointer { try copyTensor(e, into: $0.baseAddress!) }
        return values
    }

    /// Writes the whole float32 slab (`layout.totalCount` floats, padding zero) to `out`.
    public func copyParameters(into out: UnsafeMutablePointer<Float>) throws {
        out.update(from: slab.base, count: slab.count)
        guard let packedBlocks else { return }
        for e in layout.entries where packedBlocks.weight(e.name) != nil { try copyTensor(e, into: out + e.offset) }
    }

    /// Runs `body` on the float32 slab: `slab` itself, or for a packed model a temporary copy.
    public func withFloat32Parameters<T>(_ body: (FloatSlab) throws -> T) throws -> T {
        guard packedBlocks != nil else { return try body(slab) }
        let copy = try FloatSlab(count: slab.count)
        try copyParameters(into: copy.base)
        return try body(copy)
    }

    /// Calls `body` with consecutive spans that together are the float32 slab in order (packed
    /// tensors unpacked one at a time into a scratch buffer): a pass over the weights without a
    /// second copy of the model.
    public func forEachFloat32Span(_ body: (UnsafeBufferPointer<Float>) throws -> Void) throws {
        var position = 0
        var scratch: FloatSlab?
        for e in layout.entries.sorted(by: { $0.offset < $1.offset }) {
            guard let packed = packedBlocks?.weight(e.name) else { continue }
            try body(UnsafeBufferPointer(slab.view(position, e.offset - position)))
            if scratch == nil || scratch!.count < e.count { scratch = try FloatSlab(count: e.count) }
            try packed.unpack(into: scratch!.base)
            try body(UnsafeBufferPointer(scratch!.view(0, e.count)))
            position = e.offset + e.count
        }
        try body(UnsafeBufferPointer(slab.view(position, slab.count - position)))
    }

    public func metadataValue(_ key: String) -> String? { metadata.first { $0.key == key }?.value }
}
