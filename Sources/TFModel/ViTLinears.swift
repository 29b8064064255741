import TFCore
import TFKernels

/// The model's token-wise Linears on the matmul backend — the patch embedding and each block's
/// qkv, proj, fc1 and fc2 — with their weights packed from a `ViTWeights` into the backend's
/// blocked layout (float32 or bf16, `precision`).
final class ViTLinears {
    struct Block { let qkv, proj, fc1, fc2: TokenLinear }

    let patch: TokenLinear
    let blocks: [Block]
    /// The tensor the current packing was made from (`ViTWeights.patchWeight`), nil before the first.
    private(set) var packedFrom: UnsafeMutablePointer<Float>?

    init(config c: ViTConfig, precision: Precision, workers: Int) throws {
        let d = c.embedDim, h = c.mlpHiddenDim
        patch = try TokenLinear(inFeatures: c.patchValues, outFeatures: d, precision: precision, workers: workers)
        blocks = try (0..<c.depth).map { _ in
            Block(qkv: try TokenLinear(inFeatures: d, outFeatures: 3 * d, precision: precision, workers: workers),
                  proj: try TokenLinear(inFeatures: d, outFeatures: d, precision: precision, workers: workers),
                  fc1: try TokenLinear(inFeatures: d, outFeatures: h, precision: precision, workers: workers),
                  fc2: try TokenLinear(inFeatures: h, outFeatures: d, precision: precision, workers: workers))
        }
    }

    /// Packs every weight of `w`.
    func pack(_ w: ViTWeights) throws {
        packedFrom = nil
        try patch.pack(w.patchWeight)
        for (l, b) in zip(blocks, w.blocks) {
            try l.qkv.pack(b.qkvWeight)
            try l.proj.pack(b.projWeight)
            try l.fc1.pack(b.fc1Weight)
            try l.fc2.pack(b.fc2Weight)
        }
        packedFrom = w.patchWeight
    }

    /// Packs every block Linear's weight for its input-gradient product (training).
    func packForBackward(_ w: ViTWeights) throws {
        for (l, b) in zip(blocks, w.blocks) {
            try l.qkv.packForBackward(b.qkvWeight)
            try l.proj.packForBackward(b.projWeight)
            try l.fc1.packForBackward(b.fc1Weight)
            try l.fc2.packForBackward(b.fc2Weight)
        }
    }

    /// Forgets the packing: the next `pack` is needed before the Linears run again.
    func invalidate() { packedFrom = nil }

    /// Bytes of packed weights held.
    var bytes: Int {
        blocks.reduce(patch.weightBytes) { $0 + $1.qkv.weightBytes + $1.proj.weightBytes + $1.fc1.weightBytes + $1.fc2.weightBytes }
    }
}
