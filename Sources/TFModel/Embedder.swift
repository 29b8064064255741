import TFCore
import TFKernels

/// Inference on one model: a worker pool and forward buffers for up to `maxBatch` images.
/// One thread at a time; make one embedder per thread to run in parallel.
public final class Embedder {
    public let model: TransFaceModel
    private let forward: ViTForward
    private let weights: ViTWeights

    /// `precision` sets the arithmetic of the token GEMMs (bf16 needs AVX512_BF16 or AMX).
    public init(model: TransFaceModel, threads: Int = 1, maxBatch: Int = 8, precision: Precision = .fp32) throws {
        BLAS.useSingleThread()
        self.model = model
        let pool = try WorkerPool(threadCount: threads)
        forward = try ViTForward(config: model.config, preprocess: model.preprocess, maxBatch: maxBatch, pool: pool,
                                 precision: precision)
        weights = ViTWeights(layout: model.layout, config: model.config, base: model.slab.base)
        try forward.pack(weights: weights, blocks: model.packedBlocks)
    }

    public var maxBatch: Int { forward.maxBatch }
    public var precision: Precision { forward.precision }
    public var threads: Int { forward.pool.threadCount }
    public var workspaceBytes: Int { forward.workspaceBytes }
    /// When set, every forward pass adds its op-class times here (`transface bench`).
    public var profile: OpProfile?

    /// What to compute besides the embeddings.
    public struct Outputs {
        public var embeddings: UnsafeMutableBufferPointer<Float>?
        public var patchWeights: UnsafeMutableBufferPointer<Float>?
        public var patchStd: UnsafeMutableBufferPointer<Float>?
        public init(embeddings: UnsafeMutableBufferPointer<Float>? = nil, patchWeights: UnsafeMutableBufferPointer<Float>? = nil,
                    patchStd: UnsafeMutableBufferPointer<Float>? = nil) {
            self.embeddings = embeddings; self.patchWeights = patchWeights; self.patchStd = patchStd
        }
    }

    /// Embeds `count` images of `width × height` (must be the model's input size), in chunks of
    /// `maxBatch`. `flip` adds the mirrored image's embedding; `normalize` returns unit vectors.
    public func embed(images: UnsafePointer<UInt8>, count: Int, width: Int, height: Int,
                      flip: Bool = false, normalize: Bool = true, into out: Outputs) throws {
        let c = model.config, e = c.embeddingSize, p = c.numPatches
        try require(count >= 1, "image count must be at least 1, got \(count)")
        try require(width == c.imgSize && height == c.imgSize,
                    "images are \(width)x\(height), the model takes \(c.imgSize)x\(c.imgSize)")
        try require(out.embeddings != nil || out.patchWeights != nil || out.patchStd != nil, "no output requested")
        func check(_ b: UnsafeMutableBufferPointer<Float>?, _ per: Int, _ what: String) throws {
            guard let b else { return }
            let need = try checkedProduct([count, per], what: what)
            try require(b.count >= need, "\(what) capacity \(b.count) is smaller than \(need) (\(count) × \(per))")
        }
        try check(out.embeddings, e, "embedding buffer")
        try check(out.patchWeights, p, "patch-weight buffer")
        try check(out.patchStd, p, "patch-std buffer")
        let imageBytes = c.imgSize * c.imgSize * c.inChannels
        var start = 0
        while start < count {
            let n = min(maxBatch, count - start)
            let src = images + start * imageBytes
            try forward.run(weights: weights, images: src, count: n, profile: profile)
            if let pw = out.patchWeights { copy(forward.patchWeights, to: pw.baseAddress! + start * p) }
            if let ps = out.patchStd { copy(forward.patchStd, to: ps.baseAddress! + start * p) }
            if let emb = out.embeddings {
                let dst = emb.baseAddress! + start * e
                copy(forward.embeddings, to: dst)
                if flip {
                    try forward.run(weights: weights, images: src, count: n, mirror: true, profile: profile)
                    let mirrored = forward.embeddings
                    for i in 0..<(n * e) { dst[i] += mirrored[i] }
                }
                if normalize {
                    for r in 0..<n { try l2Normalize(dst + r * e, e) }
                }
            }
            start += n
        }
    }

    private func copy(_ src: UnsafeBufferPointer<Float>, to dst: UnsafeMutablePointer<Float>) {
        dst.update(from: src.baseAddress!, count: src.count)
    }
}

/// Scales `v` to unit length; throws `numeric` for a zero or non-finite vector.
public func l2Normalize(_ v: UnsafeMutablePointer<Float>, _ n: Int) throws {
    var s: Double = 0
    for i in 0..<n { s += Double(v[i]) * Double(v[i]) }
    let norm = s.squareRoot()
    guard norm.isFinite && norm > 0 else {
        throw TransFaceError(.numeric, "embedding has norm \(norm); cannot normalise")
    }
    let inv = Float(1 / norm)
    for i in 0..<n { v[i] *= inv }
}
