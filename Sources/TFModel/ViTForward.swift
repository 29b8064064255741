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

/// What a forward pass reads: uint8 RGB images (normalised through the model's lookup table)
/// or images already normalised, as float HWC (the second pass of DPAP).
public enum ForwardInput {
    case rgb8(UnsafePointer<UInt8>)
    case normalizedHWC(UnsafePointer<Float>)
}

/// The random parts of a training forward pass, drawn by the trainer from its RNG streams.
public struct TrainingNoise {
    /// Token masking: for each image, the `keep` token indices the blocks see, in the order
    /// they see them (the official `ids_shuffle[:len_keep]`); the other positions get the mask
    /// token after the final norm. Nil: no masking.
    public var keptTokens: [Int32]?
    public var keep: Int
    /// Stochastic depth: for each block, the attention-branch scales of every image then the
    /// MLP-branch scales (0 for a dropped branch, 1/keep_prob otherwise). Nil: none dropped.
    public var branchScales: [Float]?

    public init(keptTokens: [Int32]?, keep: Int, branchScales: [Float]?) {
        self.keptTokens = keptTokens; self.keep = keep; self.branchScales = branchScales
    }
}

/// The forward pass of a TransFace ViT over buffers laid out once (`ForwardBuffers`): for
/// inference every block shares one set of buffers; for training each block keeps its own
/// activations for the backward pass. Nothing is allocated per call; GEMMs run over the batch.
public final class ViTForward {
    public let config: ViTConfig
    public let maxBatch: Int
    public let pool: WorkerPool
    public let buffers: ForwardBuffers
    private let lut: [Float]
    private let reverseChannels: Bool
    public private(set) var lastCount = 0

    /// Buffers for inference (shared between blocks) or for training (`keepActivations`).
    public init(config: ViTConfig, preprocess: Preprocess, maxBatch: Int, pool: WorkerPool,
                keepActivations: Bool = false) throws {
        try config.validate()
        try require(BLAS.cpuSupportsKernels, "this CPU lacks AVX2/FMA, which libtransface's kernels are built for")
        try require(maxBatch >= 1 && maxBatch <= 65536, "max batch \(maxBatch) is outside 1...65536")
        self.config = config
        self.maxBatch = maxBatch
        self.pool = pool
        self.lut = preprocess.lookupTable()
        self.reverseChannels = preprocess.channelOrder == .bgr
        self.buffers = try ForwardBuffers(config: config, batch: maxBatch, workers: pool.threadCount,
                                          keepActivations: keepActivations)
    }

    /// Bytes of workspace held.
    public var workspaceBytes: Int { buffers.bytes }

    /// Raw embeddings (before L2 normalisation) of the last run: count × E.
    public var embeddings: UnsafeBufferPointer<Float> { .init(start: buffers.f3, count: lastCount * config.embeddingSize) }
    /// SE patch weights (softmax of the sigmoid gate) of the last run: count × P.
    public var patchWeights: UnsafeBufferPointer<Float> { .init(start: buffers.patchWeight, count: lastCount * config.numPatches) }
    /// Unbiased std of each gated token of the last run: count × P.
    public var patchStd: UnsafeBufferPointer<Float> { .init(start: buffers.patchStd, count: lastCount * config.numPatches) }

    /// Runs the model on `count` uint8 RGB images (img×img×3, interleaved; a BGR network gets
    /// its channels reversed here). `mirror` feeds the horizontally flipped images.
    public func run(weights w: ViTWeights, images: UnsafePointer<UInt8>, count: Int, mirror: Bool = false,
                    mode: ForwardMode = .eval, observer: ForwardObserver? = nil, profile: OpProfile? = nil) throws {
        try run(weights: w, input: .rgb8(images), count: count, mirror: mirror, mode: mode, observer: observer, profile: profile)
    }

    /// The noise of the last run (the backward pass follows it).
    public private(set) var lastNoise: TrainingNoise?

    public func run(weights w: ViTWeights, input: ForwardInput, count: Int, mirror: Bool = false,
                    mode: ForwardMode = .eval, noise: TrainingNoise? = nil, observer: ForwardObserver? = nil,
                    profile: OpProfile? = nil) throws {
        try require(count >= 1 && count <= maxBatch, "batch of \(count) images exceeds the workspace (1...\(maxBatch))")
        if mode != .eval {
            try require(count >= 2, "train-mode BatchNorm needs at least 2 images, got \(count)")
        }
        let c = config, t = c.numPatches, d = c.embedDim, hid = c.mlpHiddenDim, e = c.embeddingSize
        let k = c.patchValues, bufs = buffers
        let kept = noise?.keptTokens, tb = kept == nil ? t : noise!.keep
        if noise != nil {
            try require(bufs.keepsActivations, "token masking and drop path need training buffers (keepActivations)")
        }
        if let kept {
            try require(tb >= 1 && tb <= t && kept.count == count * tb && kept.allSatisfy { $0 >= 0 && Int($0) < t },
                        "token masking: \(count) × \(tb) kept token indices in 0..<\(t) expected")
        }
        if let s = noise?.branchScales {
            try require(s.count == c.depth * 2 * count, "drop path: \(c.depth * 2 * count) branch scales expected")
        }
        let rows = count * tb
        func observe(_ name: String, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
            observer?(name, UnsafeBufferPointer(start: p, count: n))
        }
        func overRows(_ n: Int, _ body: (Int, Int) -> Void) {
            pool.parallelFor(n) { r in body(r.lowerBound, r.count) }
        }
        /// Per-image Linear for the SE and head layers, output features split across workers.
        func headLinear(_ inF: Int, _ outF: Int, _ input: UnsafeMutablePointer<Float>,
                        _ weight: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
            pool.parallelFor(outF) { r in
                rowLinearForward(out: output, x: input, weight: weight, rows: count, inFeatures: inF, outFeatures: outF, outputs: r)
            }
        }
        lastCount = 0

        // Patch embedding: im2col + one GEMM per image over its patches, + bias, + position;
        // with token masking it goes to a scratch buffer and the kept tokens are gathered.
        let x0 = kept == nil ? bufs.blocks[0].input : bufs.branch
        profile.time(.elementwise) { lut.withUnsafeBufferPointer { lut in
            pool.parallelFor(count) { r in
                for b in r {
                    let cols = bufs.cols + b * t * k
                    switch input {
                    case .rgb8(let images):
                        patchIm2col(out: cols, image: images + b * c.imgSize * c.imgSize * 3, width: c.imgSize,
                                    channels: c.inChannels, patch: c.patchSize, grid: c.grid, lut: lut.baseAddress!,
                                    mirror: mirror, reverseChannels: reverseChannels)
                    case .normalizedHWC(let images):
                        patchIm2colFloat(out: cols, image: images + b * c.imgSize * c.imgSize * 3, width: c.imgSize,
                                         channels: c.inChannels, patch: c.patchSize, grid: c.grid, mirror: mirror,
                                         reverseChannels: reverseChannels)
                    }
                }
            }
        } }
        profile.time(.gemm) {
            BLAS.tokenLinear(pool: pool, images: count, tokens: t, inFeatures: k, outFeatures: d, x: bufs.cols,
                             weight: w.patchWeight, out: x0)
        }
        profile.time(.elementwise) {
            overRows(count * t) { lo, n in biasActivationForward(x0 + lo * d, bias: w.patchBias, rows: n, cols: d, activation: .none) }
        }
        observe("patch_embed", x0, count * t * d)
        profile.time(.elementwise) {
            pool.parallelFor(count) { r in for b in r { addInPlaceForward(x0 + b * t * d, w.posEmbed, count: t * d) } }
            if let kept {
                let dst = bufs.blocks[0].input
                pool.parallelFor(count) { r in
                    for b in r { for j in 0..<tb { (dst + (b * tb + j) * d).update(from: x0 + (b * t + Int(kept[b * tb + j])) * d, count: d) } }
                }
            }
        }
        /// out = x + scale·(y + bias) per image (scale 1 without drop path); y becomes y + bias.
        func residual(_ out: UnsafeMutablePointer<Float>, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      _ bias: UnsafeMutablePointer<Float>, scales: ArraySlice<Float>?) {
            profile.time(.elementwise) {
                guard let scales else {
                    overRows(rows) { lo, n in biasResidualForward(out: out + lo * d, x: x + lo * d, y: y + lo * d, bias: bias, rows: n, cols: d) }
                    return
                }
                pool.parallelFor(count) { r in
                    for b in r {
                        let o = b * tb * d
                        biasResidualForward(out: out + o, x: x + o, y: y + o, bias: bias, rows: tb, cols: d, scale: scales[scales.startIndex + b])
                    }
                }
            }
        }

        for (i, blk) in w.blocks.enumerated() {
            let a = bufs.blocks[i]
            // middle = input + proj(attention(norm1(input)))
            profile.time(.norms) { overRows(rows) { lo, n in
                layerNormForward(out: a.norm1 + lo * d, mean: a.mean1.map { $0 + lo }, rstd: a.rstd1.map { $0 + lo },
                                 x: a.input + lo * d, weight: blk.norm1Weight, bias: blk.norm1Bias, rows: n, dim: d,
                                 eps: ViTConfig.layerNormEps)
            } }
            let scales = noise?.branchScales.map { $0[(i * 2 * count)..<((i * 2 + 2) * count)] }
            profile.time(.gemm) {
                BLAS.tokenLinear(pool: pool, images: count, tokens: tb, inFeatures: d, outFeatures: 3 * d, x: a.norm1,
                                 weight: blk.qkvWeight, out: a.qkv)
            }
            let tasks = count * c.numHeads
            profile.time(.attention) { pool.run { worker in
                for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                    let b = task / c.numHeads
                    attentionHeadForward(out: a.attention + b * tb * d, probs: a.probabilities(task: task, worker: worker),
                                         qkv: a.qkv + b * tb * 3 * d, tokens: tb, dim: d, heads: c.numHeads,
                                         head: task % c.numHeads,
                                         scratch: bufs.attentionScratch + worker * bufs.attentionScratchCount)
                }
            } }
            profile.time(.gemm) {
                BLAS.tokenLinear(pool: pool, images: count, tokens: tb, inFeatures: d, outFeatures: d, x: a.attention,
                                 weight: blk.projWeight, out: bufs.branch)
            }
            residual(a.middle, a.input, bufs.branch, blk.projBias, scales: scales.map { $0.prefix(count) })
            observe("blocks.\(i).attn", bufs.branch, rows * d)

            // output = middle + fc2(relu6(fc1(norm2(middle))))
            profile.time(.norms) { overRows(rows) { lo, n in
                layerNormForward(out: a.norm2 + lo * d, mean: a.mean2.map { $0 + lo }, rstd: a.rstd2.map { $0 + lo },
                                 x: a.middle + lo * d, weight: blk.norm2Weight, bias: blk.norm2Bias, rows: n, dim: d,
                                 eps: ViTConfig.layerNormEps)
            } }
            profile.time(.gemm) {
                BLAS.tokenLinear(pool: pool, images: count, tokens: tb, inFeatures: d, outFeatures: hid, x: a.norm2,
                                 weight: blk.fc1Weight, out: a.hidden)
            }
            profile.time(.elementwise) {
                overRows(rows) { lo, n in biasActivationForward(a.hidden + lo * hid, bias: blk.fc1Bias, rows: n, cols: hid, activation: .relu6) }
            }
            profile.time(.gemm) {
                BLAS.tokenLinear(pool: pool, images: count, tokens: tb, inFeatures: hid, outFeatures: d, x: a.hidden,
                                 weight: blk.fc2Weight, out: bufs.branch)
            }
            residual(a.output, a.middle, bufs.branch, blk.fc2Bias, scales: scales.map { $0.suffix(count) })
            observe("blocks.\(i).mlp", bufs.branch, rows * d)
            observe("blocks.\(i)", a.output, rows * d)
        }
        let xLast = bufs.blocks[c.depth - 1].output
        let normOut = kept == nil ? bufs.norm : bufs.branch
        profile.time(.norms) { overRows(rows) { lo, n in
            layerNormForward(out: normOut + lo * d, mean: bufs.meanFinal.map { $0 + lo }, rstd: bufs.rstdFinal.map { $0 + lo },
                             x: xLast + lo * d, weight: w.normWeight, bias: w.normBias, rows: n, dim: d,
                             eps: ViTConfig.layerNormEps)
        } }
        if let kept {  // back to patch order; masked positions hold the mask token
            profile.time(.elementwise) { pool.parallelFor(count) { r in
                for b in r {
                    for j in 0..<t { (bufs.norm + (b * t + j) * d).update(from: w.maskToken, count: d) }
                    for j in 0..<tb { (bufs.norm + (b * t + Int(kept[b * tb + j])) * d).update(from: normOut + (b * tb + j) * d, count: d) }
                }
            } }
        }
        let patchRows = count * t
        observe("norm", bufs.norm, patchRows * d)

        if let se = w.se {
            // SE gate: sigmoid(W2 · relu(W1 · flatten(tokens))); its softmax ranks patches.
            profile.time(.head) {
                headLinear(t * d, t, bufs.norm, se.w0, bufs.se1)
                biasActivationForward(bufs.se1, bias: nil, rows: count, cols: t, activation: .relu)
                headLinear(t, t, bufs.se1, se.w2, bufs.se2)
                biasActivationForward(bufs.se2, bias: nil, rows: count, cols: t, activation: .sigmoid)
            }
            observe("senet", bufs.se2, count * t)
            profile.time(.elementwise) {
                bufs.patchWeight.update(from: bufs.se2, count: count * t)
                softmaxRowsForward(bufs.patchWeight, rows: count, cols: t)
                overRows(patchRows) { lo, n in scaleRowsForward(out: bufs.gated + lo * d, x: bufs.norm + lo * d, scale: bufs.se2 + lo, rows: n, cols: d) }
            }
        } else {  // plain ViT: no gate, every patch weighs the same
            bufs.patchWeight.update(repeating: 1 / Float(t), count: count * t)
            bufs.gated.update(from: bufs.norm, count: patchRows * d)
        }
        observe("feature.input", bufs.gated, patchRows * d)
        profile.time(.elementwise) {
            overRows(patchRows) { lo, n in rowStdForward(out: bufs.patchStd + lo, x: bufs.gated + lo * d, rows: n, cols: d) }
        }

        // Head: Linear(P·D→D) → BN → Linear(D→E) → BN.
        let train = mode != .eval, update = mode == .train(updateRunningStatistics: true)
        profile.time(.head) { headLinear(t * d, d, bufs.gated, w.feature0Weight, bufs.f0) }
        observe("feature.0", bufs.f0, count * d)
        profile.time(.norms) { batchNormForward(out: bufs.f1, x: bufs.f0, rows: count, features: d, weight: w.feature1.weight, bias: w.feature1.bias,
                         runningMean: w.feature1.runningMean, runningVar: w.feature1.runningVar,
                         eps: ViTConfig.batchNormEps, useBatchStatistics: train, updateRunning: update,
                         saveMean: bufs.bn1Mean, saveRstd: bufs.bn1Rstd) }
        observe("feature.1", bufs.f1, count * d)
        profile.time(.head) { headLinear(d, e, bufs.f1, w.feature2Weight, bufs.f2) }
        observe("feature.2", bufs.f2, count * e)
        profile.time(.norms) { batchNormForward(out: bufs.f3, x: bufs.f2, rows: count, features: e, weight: w.feature3.weight, bias: w.feature3.bias,
                         runningMean: w.feature3.runningMean, runningVar: w.feature3.runningVar,
                         eps: ViTConfig.batchNormEps, useBatchStatistics: train, updateRunning: update,
                         saveMean: bufs.bn3Mean, saveRstd: bufs.bn3Rstd) }
        observe("feature.3", bufs.f3, count * e)
        lastNoise = noise
        lastCount = count
    }
}
