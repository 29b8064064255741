import TFCore

/// How a tensor is initialised by the official code.
public enum TensorInit: Sendable, Equatable {
    case truncatedNormal(std: Float)   // trunc_normal_(std) on [-2, 2]
    case normal(std: Float)
    case torchDefault(fanIn: Int)      // U(±1/sqrt(fan_in)): nn.Linear/Conv2d defaults
    case zeros, ones
}

/// One tensor of the model: its official state_dict name, shape, place in the slab.
public struct TensorEntry: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let offset: Int
    public var count: Int { shape.reduce(1, *) }
    /// Trainable parameter (false for BatchNorm running statistics).
    public let trainable: Bool
    public let initializer: TensorInit
}

/// The one table that lays out parameters (and, with the same offsets, gradients and
/// optimizer moments) in a slab and names each tensor as the official `state_dict` does.
public struct ParameterLayout: Sendable {
    public let entries: [TensorEntry]
    public let totalCount: Int
    private let index: [String: Int]

    public init(config c: ViTConfig) {
        var entries: [TensorEntry] = []
        var planner = SlabPlanner()
        func add(_ name: String, _ shape: [Int], _ initializer: TensorInit, trainable: Bool = true) {
            let offset = planner.reserve(shape.reduce(1, *))
            entries.append(TensorEntry(name: name, shape: shape, offset: offset, trainable: trainable, initializer: initializer))
        }
        let d = c.embedDim, p = c.numPatches, h = c.mlpHiddenDim, e = c.embeddingSize
        let linear = TensorInit.truncatedNormal(std: 0.02)
        add("pos_embed", [1, p, d], .truncatedNormal(std: 0.02))
        add("mask_token", [1, 1, d], .normal(std: 0.02))
        add("patch_embed.proj.weight", [d, c.inChannels, c.patchSize, c.patchSize], .torchDefault(fanIn: c.patchValues))
        add("patch_embed.proj.bias", [d], .torchDefault(fanIn: c.patchValues))
        for i in 0..<c.depth {
            let b = "blocks.\(i)."
            add(b + "norm1.weight", [d], .ones)
            add(b + "norm1.bias", [d], .zeros)
            add(b + "attn.qkv.weight", [3 * d, d], linear)
            add(b + "attn.proj.weight", [d, d], linear)
            add(b + "attn.proj.bias", [d], .zeros)
            add(b + "norm2.weight", [d], .ones)
            add(b + "norm2.bias", [d], .zeros)
            add(b + "mlp.fc1.weight", [h, d], linear)
            add(b + "mlp.fc1.bias", [h], .zeros)
            add(b + "mlp.fc2.weight", [d, h], linear)
            add(b + "mlp.fc2.bias", [d], .zeros)
        }
        add("norm.weight", [d], .ones)
        add("norm.bias", [d], .zeros)
        add("feature.0.weight", [d, d * p], linear)
        func batchNorm(_ name: String, _ n: Int) {
            add(name + ".weight", [n], .ones)
            add(name + ".bias", [n], .zeros)
            add(name + ".running_mean", [n], .zeros, trainable: false)
            add(name + ".running_var", [n], .ones, trainable: false)
        }
        batchNorm("feature.1", d)
        add("feature.2.weight", [e, d], linear)
        batchNorm("feature.3", e)
        if c.seGate {
            add("senet.0.weight", [p, d * p], .torchDefault(fanIn: d * p))
            add("senet.2.weight", [p, p], .torchDefault(fanIn: p))
        }
        self.entries = entries
        self.totalCount = planner.total
        self.index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
    }

    public subscript(name: String) -> TensorEntry? { index[name].map { entries[$0] } }

    /// The entry for `name`, or `notFound` naming it.
    public func entry(_ name: String) throws -> TensorEntry {
        guard let e = self[name] else { throw TransFaceError.notFound("the model has no tensor '\(name)'") }
        return e
    }

    /// Bytes of float32 weights (what a model file stores).
    public var weightBytes: Int { entries.reduce(0) { $0 + $1.count } * 4 }
}
