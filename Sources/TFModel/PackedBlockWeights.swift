import TFCore
import TFKernels

/// The block Linears' weights of a model (qkv, proj, fc1 and fc2 of every block: ~45 % of a
/// model's bytes) packed once in the matmul backend's float32 layout. A model loaded for
/// inference keeps these *instead of* their float32 copies, and every float32 context of it
/// reads them in place: a context adds only its activations. The float32 values come back
/// exactly through `unpack`.
public final class PackedBlockWeights {
    /// One block's packed Linears.
    public struct Block { public let qkv, proj, fc1, fc2: PackedLinearWeight }

    public let blocks: [Block]
    private let byName: [String: PackedLinearWeight]

    /// Packs the block Linears of `config` from `read(name, into:)`, which writes a tensor's
    /// float32 values (one scratch tensor at a time: no second copy of the model).
    public init(config c: ViTConfig, read: (String, UnsafeMutablePointer<Float>) throws -> Void) throws {
        let d = c.embedDim, h = c.mlpHiddenDim
        let scratch = try FloatSlab(count: max(3 * d * d, d * h))
        var byName: [String: PackedLinearWeight] = [:]
        func packed(_ name: String, _ inF: Int, _ outF: Int) throws -> PackedLinearWeight {
            let w = try PackedLinearWeight(inFeatures: inF, outFeatures: outF, precision: .fp32, use: .forward)
            try read(name, scratch.base)
            try w.pack(from: scratch.base)
            byName[name] = w
            return w
        }
        blocks = try (0..<c.depth).map { i in
            let b = "blocks.\(i)."
            return Block(qkv: try packed(b + "attn.qkv.weight", d, 3 * d), proj: try packed(b + "attn.proj.weight", d, d),
                         fc1: try packed(b + "mlp.fc1.weight", d, h), fc2: try packed(b + "mlp.fc2.weight", h, d))
        }
        self.byName = byName
    }

    /// The packed weight of tensor `name`, nil for tensors kept as float32.
    public func weight(_ name: String) -> PackedLinearWeight? { byName[name] }

    /// Bytes of all packed weights.
    public var bytes: Int { byName.values.reduce(0) { $0 + $1.bytes } }
}
