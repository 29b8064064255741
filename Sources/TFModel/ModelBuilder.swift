import TFCore

/// Assembles a model tensor by tensor (the converter's path) or from the official
/// initialisation, then saves it or makes an in-memory model.
public final class ModelBuilder {
    public let config: ViTConfig
    public let layout: ParameterLayout
    public var preprocess: Preprocess
    public private(set) var metadata: [(key: String, value: String)] = []
    private let slab: FloatSlab
    private var isSet: [Bool]

    public init(config: ViTConfig) throws {
        try config.validate()
        self.config = config
        self.layout = ParameterLayout(config: config)
        self.preprocess = .official(size: config.imgSize)
        self.slab = try FloatSlab(count: layout.totalCount)
        self.isSet = Array(repeating: false, count: layout.entries.count)
    }

    /// Sets a tensor from raw values of `dtype`; `dims` must equal the expected shape.
    public func setTensor(_ name: String, dims: [Int], dtype: StoredDType, data: UnsafeRawPointer) throws {
        guard let i = layout.entries.firstIndex(where: { $0.name == name }) else {
            throw TransFaceError.notFound("no tensor '\(name)' in \(config.arch) (embed \(config.embedDim), depth \(config.depth))")
        }
        let e = layout.entries[i]
        try require(dims == e.shape, "tensor '\(name)' has shape \(dims), expected \(e.shape)")
        // Decode and check first: a refused tensor leaves the builder as it was.
        let values: [Float]
        switch dtype {
        case .f32: values = Array(UnsafeBufferPointer(start: data.assumingMemoryBound(to: Float.self), count: e.count))
        case .f16, .bf16:
            let src = data.assumingMemoryBound(to: UInt16.self)
            values = (0..<e.count).map { HalfPrecision.decode(src[$0], dtype) }
        }
        try require(values.allSatisfy(\.isFinite), "tensor '\(name)' contains NaN or Inf")
        _ = slab.view(e.offset, e.count).update(fromContentsOf: values)
        isSet[i] = true
    }

    /// Sets a tensor from float32 values.
    public func setTensor(_ name: String, _ values: [Float]) throws {
        let e = try layout.entry(name)
        try require(values.count == e.count, "tensor '\(name)' needs \(e.count) values, got \(values.count)")
        try values.withUnsafeBytes { try setTensor(name, dims: e.shape, dtype: .f32, data: $0.baseAddress!) }
    }

    /// Initialises every tensor as the official code does, from `seed`.
    public func initializeWeights(seed: UInt64) {
        var rng = SeededRNG(seed: seed, stream: 0x1417)
        for (i, e) in layout.entries.enumerated() {
            let dst = slab.view(e.offset, e.count)
            switch e.initializer {
            case .zeros: dst.update(repeating: 0)
            case .ones: dst.update(repeating: 1)
            case .normal(let std):
                for j in dst.indices { dst[j] = Float(rng.normal()) * std }
            case .truncatedNormal(let std):
                for j in dst.indices {
                    var v = rng.normal() * Double(std)
                    while abs(v) > 2 { v = rng.normal() * Double(std) }
                    dst[j] = Float(v)
                }
            case .torchDefault(let fanIn):
                let bound = 1 / Float(fanIn).squareRoot()
                for j in dst.indices { dst[j] = (rng.uniformFloat() * 2 - 1) * bound }
            }
            isSet[i] = true
        }
    }

    public func setMetadata(_ key: String, _ value: String) throws {
        try require(!key.isEmpty, "metadata key is empty")
        if let i = metadata.firstIndex(where: { $0.key == key }) { metadata[i].value = value } else { metadata.append((key, value)) }
    }

    public func setPreprocess(_ p: Preprocess) throws {
        try p.validate(for: config)
        preprocess = p
    }

    /// A model holding a copy of the builder's weights; throws while any tensor is unset.
    public func build() throws -> TransFaceModel { try makeModel(copyingWeights: true) }

    /// Saves the model file atomically (same checks as `build`, no copy of the weights).
    public func save(to path: String, dtype: StoredDType = .f32) throws {
        try ModelFile.write(makeModel(copyingWeights: false), to: path, dtype: dtype)
    }

    private func makeModel(copyingWeights: Bool) throws -> TransFaceModel {
        let unset = layout.entries.indices.filter { !isSet[$0] }.map { layout.entries[$0].name }
        guard unset.isEmpty else { throw TransFaceError(.misuse, "tensors not set: \(unset.prefix(5).joined(separator: ", "))\(unset.count > 5 ? ", ... (\(unset.count) in all)" : "")") }
        var weights = slab
        if copyingWeights {
            weights = try FloatSlab(count: slab.count)
            weights.base.update(from: slab.base, count: slab.count)
        }
        return try TransFaceModel(config: config, preprocess: preprocess, metadata: metadata, parameters: weights)
    }
}
