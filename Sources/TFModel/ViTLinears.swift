import TFCore
import TFKernels

/// The model's token-wise Linears on the matmul backend — the patch embedding and each block's
/// qkv, proj, fc1 and fc2 — with their weights packed from a `ViTWeights` into the backend's
/// blocked layout (float32 or bf16, `precision`).
final class ViTLinears {
    struct Block { let qkv, proj, fc1, fc2: TokenLinear }

    let patch: TokenLinear
    let blocks: [Block]
    /// bf16 copies of the row Linears' weights (SE and head; bf16 precision only): halves the
    /// memory traffic that bounds them at small batches.
    let rowWeights: RowWeightsBF16?
    /// The tensor the current packing was made from (`ViTWeights.patchWeight`), nil before the first.
    private(set) var packedFrom: UnsafeMutablePointer<Float>?
    /// The model's packed block Linears the current packing reads (nil: packed from float32).
    private(set) var packedBlocks: PackedBlockWeights?

    init(config c: ViTConfig, precision: Precision, workers: Int) throws {
        let d = c.embedDim, h = c.mlpHiddenDim
        patch = try TokenLinear(inFeatures: c.patchValues, outFeatures: d, precision: precision, workers: workers)
        blocks = try (0..<c.depth).map { _ in
            Block(qkv: try TokenLinear(inFeatures: d, outFeatures: 3 * d, precision: precision, workers: workers),
                  proj: try TokenLinear(inFeatures: d, outFeatures: d, precision: precision, workers: workers),
                  fc1: try TokenLinear(inFeatures: d, outFeatures: h, precision: precision, workers: workers),
                  fc2: try TokenLinear(inFeatures: h, outFeatures: d, precision: precision, workers: workers))
        }
        rowWeights = precision == .bf16 ? RowWeightsBF16(config: c) : nil
    }

    /// Packs every weight of `w`; with `blocks` (a loaded model's packed block Linears) a float32
    /// context reads those in place and a bf16 one packs from their float32 values.
    func pack(_ w: ViTWeights, blocks: PackedBlockWeights? = nil) throws {
        packedFrom = nil
        packedBlocks = nil
        try patch.pack(w.patchWeight)
        if let blocks {
            try require(blocks.blocks.count == self.blocks.count, "packed weights of \(blocks.blocks.count) blocks for \(self.blocks.count)")
            var scratch: FloatSlab?  // float32 values of one weight, for a precision other than the packing's
            for (l, b) in zip(self.blocks, blocks.blocks) {
                for (linear, packed) in [(l.qkv, b.qkv), (l.proj, b.proj), (l.fc1, b.fc1), (l.fc2, b.fc2)] {
                    if linear.precision == packed.precision {
                        try linear.adopt(packed)
                    } else {
                        if (scratch?.count ?? 0) < packed.inFeatures * packed.outFeatures {
                            scratch = try FloatSlab(count: packed.inFeatures * packed.outFeatures)
                        }
                        try packed.unpack(into: scratch!.base)
                        try linear.pack(scratch!.base)
                    }
                }
            }
        } else {
            try forEachBlockLinear(w) { try $0.pack($1) }
        }
        rowWeights?.convert(w)
        packedFrom = w.patchWeight
        packedBlocks = blocks
    }

    /// Packs every block Linear's weight for its input-gradient product (training).
    func packForBackward(_ w: ViTWeights) throws { try forEachBlockLinear(w) { try $0.packForBackward($1) } }

    /// `body(linear, its weight in w)` for the qkv, proj, fc1 and fc2 of every block.
    private func forEachBlockLinear(_ w: ViTWeights, _ body: (TokenLinear, UnsafeMutablePointer<Float>) throws -> Void) throws {
        for (l, b) in zip(blocks, w.blocks) {
            try body(l.qkv, b.qkvWeight)
            try body(l.proj, b.projWeight)
            try body(l.fc1, b.fc1Weight)
            try body(l.fc2, b.fc2Weight)
        }
    }

    /// Bytes of packed weights this context holds (adopted ones belong to the model).
    var bytes: Int {
        blocks.reduce(patch.weightBytes + (rowWeights?.bytes ?? 0)) {
            $0 + $1.qkv.weightBytes + $1.proj.weightBytes + $1.fc1.weightBytes + $1.fc2.weightBytes
        }
    }
}

/// bf16 copies of the SE and head weights (`senet.0`, `senet.2`, `feature.0`, `feature.2`) in one allocation.
final class RowWeightsBF16 {
    let se0, se2, feature0, feature2: UnsafeMutablePointer<UInt16>
    private let storage: UnsafeMutablePointer<UInt16>
    private let counts: [Int]

    /// Sizes are those of the model's own tensors (bounded by `ViTConfig.validate`).
    init(config c: ViTConfig) {
        let t = c.numPatches, d = c.embedDim
        counts = [c.seGate ? t * t * d : 0, c.seGate ? t * t : 0, d * t * d, c.embeddingSize * d]
        storage = .allocate(capacity: max(counts.reduce(0, +), 1))
        se0 = storage
        se2 = se0 + counts[0]
        feature0 = se2 + counts[1]
        feature2 = feature0 + counts[2]
    }

    deinit { storage.deallocate() }

    var bytes: Int { counts.reduce(0, +) * 2 }

    func convert(_ w: ViTWeights) {
        func copy(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, _ n: Int) {
            for i in 0..<n { dst[i] = BF16Weights.round(src[i]) }
        }
        if let se = w.se {
            copy(se.w0, se0, counts[0])
            copy(se.w2, se2, counts[1])
        }
        copy(w.feature0Weight, feature0, counts[2])
        copy(w.feature2Weight, feature2, counts[3])
    }
}
