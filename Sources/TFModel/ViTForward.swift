import TFCore
import TFKernels

/// BatchNorm behaviour of a forward pass: running statistics (eval) or batch statistics
/// (train), optionally moving the running statistics as PyTorch's train mode does.
public enum ForwardMode: Equatable, Sendable {
    case eval
    case train(updateRunningStatistics: Bool)
}

/// Receives a module's output by its official module name (`patch_embed`, `blocks.0.attn`,
/// `blocks.0.mlp`, `blocks.0`, `norm`, `senet`, `feature.input`, `feature.0` ... `feature.3`).
public typealias ForwardObserver = (String, UnsafeBufferPointer<Float>) -> Void

/// The buffers and code of a forward pass for up to `maxBatch` images: one slab, laid out once;
/// nothing is allocated per call. GEMMs run over the whole batch.
public final class ViTForward {
    public let config: ViTConfig
    public let maxBatch: Int
    public let pool: WorkerPool
    private let slab: FloatSlab
    private let lut: [Float]
    private let reverseChannels: Bool
    private let cols, x, h, qkv, attn, mlp, probs, se1, se2, weight, std, f0, f1, f2, f3: UnsafeMutablePointer<Float>
    public private(set) var lastCount = 0

    public init(config: ViTConfig, preprocess: Preprocess, maxBatch: Int, pool: WorkerPool) throws {
        try config.validate()
        try require(maxBatch >= 1 && maxBatch <= 65536, "max batch \(maxBatch) is outside 1...65536")
        self.config = config
        self.maxBatch = maxBatch
        self.pool = pool
        self.lut = preprocess.lookupTable()
        self.reverseChannels = preprocess.channelOrder == .bgr
        let t = config.numPatches, d = config.embedDim, rows = try checkedProduct([maxBatch, t], what: "workspace")
        var plan = SlabPlanner()
        let offsets = [
            plan.reserve(try checkedProduct([rows, config.patchValues], what: "workspace")),
            plan.reserve(rows * d), plan.reserve(rows * d), plan.reserve(rows * 3 * d), plan.reserve(rows * d),
            plan.reserve(try checkedProduct([rows, config.mlpHiddenDim], what: "workspace")),
            plan.reserve(pool.threadCount * t * t),
            plan.reserve(rows), plan.reserve(rows), plan.reserve(rows), plan.reserve(rows),
            plan.reserve(maxBatch * d), plan.reserve(maxBatch * d),
            plan.reserve(maxBatch * config.embeddingSize), plan.reserve(maxBatch * config.embeddingSize),
        ]
        let slab = try FloatSlab(count: plan.total)
        self.slab = slab
        let p = offsets.map { slab.base + $0 }
        (cols, x, h, qkv, attn, mlp, probs) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
        (se1, se2, weight, std, f0, f1, f2, f3) = (p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14])
    }

    /// Bytes of workspace held.
    public var workspaceBytes: Int { slab.count * 4 }

    /// Raw embeddings (before L2 normalisation) of the last run: count × E.
    public var embeddings: UnsafeBufferPointer<Float> { .init(start: f3, count: lastCount * config.embeddingSize) }
    /// SE patch weights (softmax of the sigmoid gate) of the last run: count × P.
    public var patchWeights: UnsafeBufferPointer<Float> { .init(start: weight, count: lastCount * config.numPatches) }
    /// Unbiased std of each gated token of the last run: count × P.
    public var patchStd: UnsafeBufferPointer<Float> { .init(start: std, count: lastCount * config.numPatches) }

    /// Runs the model on `count` uint8 RGB images (img×img×3, interleaved; a BGR network gets
    /// its channels reversed here).
    /// `mirror` feeds the horizontally flipped images.
    public func run(weights w: ViTWeights, images: UnsafePointer<UInt8>, count: Int, mirror: Bool = false,
                    mode: ForwardMode = .eval, observer: ForwardObserver? = nil) throws {
        try require(count >= 1 && count <= maxBatch, "batch of \(count) images exceeds the workspace (1...\(maxBatch))")
        if mode != .eval {
            try require(count >= 2, "train-mode BatchNorm needs at least 2 images, got \(count)")
        }
        let c = config, t = c.numPatches, d = c.embedDim, hid = c.mlpHiddenDim, e = c.embeddingSize
        let rows = count * t, k = c.patchValues
        let imageBytes = c.imgSize * c.imgSize * c.inChannels
        func observe(_ name: String, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
            observer?(name, UnsafeBufferPointer(start: p, count: n))
        }
        func overRows(_ n: Int, _ body: (Int, Int) -> Void) {
            pool.parallelFor(n) { r in body(r.lowerBound, r.count) }
        }
        /// Per-image Linear for the SE and head layers, output features split across workers.
        func headLinear(_ n: Int, _ inF: Int, _ outF: Int, _ input: UnsafeMutablePointer<Float>,
                        _ weight: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
            pool.parallelFor(outF) { r in
                rowLinearForward(out: output, x: input, weight: weight, rows: n, inFeatures: inF, outFeatures: outF, outputs: r)
            }
        }
        lastCount = 0

        // Patch embedding: im2col + one GEMM over every patch of the batch, + bias.
        lut.withUnsafeBufferPointer { lut in
            pool.parallelFor(count) { r in
                for b in r {
                    patchIm2col(out: cols + b * t * k, image: images + b * imageBytes, width: c.imgSize,
                                channels: c.inChannels, patch: c.patchSize, grid: c.grid, lut: lut.baseAddress!, mirror: mirror,
                                reverseChannels: reverseChannels)
                }
            }
        }
        BLAS.tokenLinear(pool: pool, images: count, tokens: t, inFeatures: k, outFeatures: d, x: cols, weight: w.patchWeight, out: x)
        overRows(rows) { lo, n in biasActivationForward(x + lo * d, bias: w.patchBias, rows: n, cols: d, activation: .none) }
        observe("patch_embed", x, rows * d)
        pool.parallelFor(count) { r in for b in r { addInPlaceForward(x + b * t * d, w.posEmbed, count: t * d) } }

        for (i, blk) in w.blocks.enumerated() {
            // x = x + proj(attention(norm1(x)))
            overRows(rows) { lo, n in
                layerNormForward(out: h + lo * d, mean: nil, rstd: nil, x: x + lo * d, weight: blk.norm1Weight,
                                 bias: blk.norm1Bias, rows: n, dim: d, eps: ViTConfig.layerNormEps)
            }
            BLAS.tokenLinear(pool: pool, images: count, tokens: t, inFeatures: d, outFeatures: 3 * d, x: h, weight: blk.qkvWeight, out: qkv)
            let tasks = count * c.numHeads
            pool.run { worker in
                let scratch = probs + worker * t * t
                for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                    let b = task / c.numHeads
                    attentionHeadForward(out: attn + b * t * d, probs: scratch, qkv: qkv + b * t * 3 * d,
                                         tokens: t, dim: d, heads: c.numHeads, head: task % c.numHeads)
                }
            }
            BLAS.tokenLinear(pool: pool, images: count, tokens: t, inFeatures: d, outFeatures: d, x: attn, weight: blk.projWeight, out: h)
            overRows(rows) { lo, n in biasResidualForward(x: x + lo * d, y: h + lo * d, bias: blk.projBias, rows: n, cols: d) }
            observe("blocks.\(i).attn", h, rows * d)

            // x = x + fc2(relu6(fc1(norm2(x))))
            overRows(rows) { lo, n in
                layerNormForward(out: h + lo * d, mean: nil, rstd: nil, x: x + lo * d, weight: blk.norm2Weight,
                                 bias: blk.norm2Bias, rows: n, dim: d, eps: ViTConfig.layerNormEps)
            }
            BLAS.tokenLinear(pool: pool, images: count, tokens: t, inFeatures: d, outFeatures: hid, x: h, weight: blk.fc1Weight, out: mlp)
            overRows(rows) { lo, n in biasActivationForward(mlp + lo * hid, bias: blk.fc1Bias, rows: n, cols: hid, activation: .relu6) }
            BLAS.tokenLinear(pool: pool, images: count, tokens: t, inFeatures: hid, outFeatures: d, x: mlp, weight: blk.fc2Weight, out: h)
            overRows(rows) { lo, n in biasResidualForward(x: x + lo * d, y: h + lo * d, bias: blk.fc2Bias, rows: n, cols: d) }
            observe("blocks.\(i).mlp", h, rows * d)
            observe("blocks.\(i)", x, rows * d)
        }
        overRows(rows) { lo, n in
            layerNormForward(out: h + lo * d, mean: nil, rstd: nil, x: x + lo * d, weight: w.normWeight,
                             bias: w.normBias, rows: n, dim: d, eps: ViTConfig.layerNormEps)
        }
        observe("norm", h, rows * d)

        // SE gate: sigmoid(W2 · relu(W1 · flatten(tokens))); its softmax ranks patches.
        headLinear(count, t * d, t, h, w.se0Weight, se1)
        biasActivationForward(se1, bias: nil, rows: count, cols: t, activation: .relu)
        headLinear(count, t, t, se1, w.se2Weight, se2)
        biasActivationForward(se2, bias: nil, rows: count, cols: t, activation: .sigmoid)
        observe("senet", se2, count * t)
        for i in 0..<(count * t) { weight[i] = se2[i] }
        softmaxRowsForward(weight, rows: count, cols: t)
        overRows(rows) { lo, n in scaleRowsForward(out: attn + lo * d, x: h + lo * d, scale: se2 + lo, rows: n, cols: d) }
        observe("feature.input", attn, rows * d)
        overRows(rows) { lo, n in rowStdForward(out: std + lo, x: attn + lo * d, rows: n, cols: d) }

        // Head: Linear(P·D→D) → BN → Linear(D→E) → BN.
        let train = mode != .eval, update = mode == .train(updateRunningStatistics: true)
        headLinear(count, t * d, d, attn, w.feature0Weight, f0)
        observe("feature.0", f0, count * d)
        batchNormForward(out: f1, x: f0, rows: count, features: d, weight: w.feature1.weight, bias: w.feature1.bias,
                         runningMean: w.feature1.runningMean, runningVar: w.feature1.runningVar,
                         eps: ViTConfig.batchNormEps, useBatchStatistics: train, updateRunning: update)
        observe("feature.1", f1, count * d)
        headLinear(count, d, e, f1, w.feature2Weight, f2)
        observe("feature.2", f2, count * e)
        batchNormForward(out: f3, x: f2, rows: count, features: e, weight: w.feature3.weight, bias: w.feature3.bias,
                         runningMean: w.feature3.runningMean, runningVar: w.feature3.runningVar,
                         eps: ViTConfig.batchNormEps, useBatchStatistics: train, updateRunning: update)
        observe("feature.3", f3, count * e)
        lastCount = count
    }
}
