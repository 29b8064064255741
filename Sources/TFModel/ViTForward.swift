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
/// activations for the backward pass. Nothing is allocated per call once a batch shape has been
/// seen. The token GEMMs run on the matmul backend (`TokenLinear`) with the weights packed into its
/// layout: on the first eval-mode run for a `ViTWeights` (eval runs assume its values stay as they
/// were, as a model's do) and on every train-mode run (a trainer's weights move each step).
public final class ViTForward {
    public let config: ViTConfig
    public let maxBatch: Int
    public let pool: WorkerPool
    public let buffers: ForwardBuffers
    /// Arithmetic of the token GEMMs.
    public let precision: Precision
    /// The token Linears (the backward pass runs their gradient products).
    let linears: ViTLinears
    /// Which build of our own kernels runs (AVX-512 or AVX2).
    private let kernels: KernelDispatch
    private let lut: [Float]
    private let reverseChannels: Bool
    public private(set) var lastCount = 0

    /// Buffers for inference (shared between blocks) or for training (`keepActivations`).
    public init(config: ViTConfig, preprocess: Preprocess, maxBatch: Int, pool: WorkerPool,
                keepActivations: Bool = false, precision: Precision = .fp32) throws {
        try config.validate()
        try require(BLAS.cpuSupportsKernels, "this CPU lacks AVX2/FMA, which libtransface's kernels are built for")
        try require(maxBatch >= 1 && maxBatch <= 65536, "max batch \(maxBatch) is outside 1...65536")
        self.config = config
        self.maxBatch = maxBatch
        self.pool = pool
        self.precision = precision
        self.lut = preprocess.lookupTable()
        self.reverseChannels = preprocess.channelOrder == .bgr
        self.buffers = try ForwardBuffers(config: config, batch: maxBatch, workers: pool.threadCount,
                                          keepActivations: keepActivations)
        self.linears = try ViTLinears(config: config, precision: precision, workers: pool.threadCount)
        self.kernels = try KernelDispatch()
    }

    /// Bytes of workspace held (activations and packed GEMM weights).
    public var workspaceBytes: Int { buffers.bytes + linears.bytes }

    /// Packs `w` for the runs that follow (a run does it itself when needed; calling this
    /// first moves the work and the allocation out of the first call).
    public func pack(weights w: ViTWeights, blocks: PackedBlockWeights? = nil) throws { try linears.pack(w, blocks: blocks) }

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

    /// What one run works with: its sizes, noise, hooks and whether residual branches may be
    /// fused into the GEMMs (inference buffers, nobody observing the branch outputs).
    private struct Pass {
        let count, tokens, rows, tilesPerImage: Int
        let kept: [Int32]?
        let noise: TrainingNoise?
        let observer: ForwardObserver?
        let profile: OpProfile?
        let fuseResiduals: Bool

        func observe(_ name: String, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
            observer?(name, UnsafeBufferPointer(start: p, count: n))
        }
    }

    public func run(weights w: ViTWeights, input: ForwardInput, count: Int, mirror: Bool = false,
                    mode: ForwardMode = .eval, noise: TrainingNoise? = nil, observer: ForwardObserver? = nil,
                    profile: OpProfile? = nil) throws {
        try require(count >= 1 && count <= maxBatch, "batch of \(count) images exceeds the workspace (1...\(maxBatch))")
        if mode != .eval {
            try require(count >= 2, "train-mode BatchNorm needs at least 2 images, got \(count)")
        }
        let c = config, t = c.numPatches
        let kept = noise?.keptTokens, tb = kept == nil ? t : noise!.keep
        if noise != nil {
            try require(buffers.keepsActivations, "token masking and drop path need training buffers (keepActivations)")
        }
        if let kept {
            try require(tb >= 1 && tb <= t && kept.count == count * tb && kept.allSatisfy { $0 >= 0 && Int($0) < t },
                        "token masking: \(count) × \(tb) kept token indices in 0..<\(t) expected")
        }
        if let s = noise?.branchScales {
            try require(s.count == c.depth * 2 * count, "drop path: \(c.depth * 2 * count) branch scales expected")
        }
        lastCount = 0
        if mode != .eval || linears.packedFrom != w.patchWeight {
            try profile.time(.gemm) { try linears.pack(w, blocks: linears.packedBlocks) }
        }
        let pass = Pass(count: count, tokens: tb, rows: count * tb, tilesPerImage: tilesPerImage(tb),
                        kept: kept, noise: noise, observer: observer, profile: profile,
                        fuseResiduals: !buffers.keepsActivations && observer == nil)
        try embedPatches(w, input, mirror: mirror, pass)
        for i in 0..<c.depth { try block(i, w.blocks[i], next: i + 1 < c.depth ? w.blocks[i + 1] : nil, pass) }
        finalNorm(w, pass)
        seGate(w, pass)
        head(w, mode: mode, pass)
        lastNoise = noise
        lastCount = count
    }

    /// Row tiles per image of the token GEMMs: one per worker while tiles keep ≥ 16 rows. Fixed
    /// for a pool and token count, so results do not depend on the batch.
    func tilesPerImage(_ tokens: Int) -> Int { max(1, min(pool.threadCount, tokens / 16)) }

    private func overRows(_ n: Int, _ body: (Int, Int) -> Void) {
        pool.parallelFor(n) { r in body(r.lowerBound, r.count) }
    }

    /// Patch embedding: im2col, one GEMM with the bias fused, + position; with token masking it
    /// goes to a scratch buffer and the kept tokens are gathered.
    private func embedPatches(_ w: ViTWeights, _ input: ForwardInput, mirror: Bool, _ p: Pass) throws {
        let c = config, t = c.numPatches, d = c.embedDim, k = c.patchValues, bufs = buffers
        let x0 = p.kept == nil ? bufs.blocks[0].input : bufs.branch
        p.profile.time(.elementwise) { lut.withUnsafeBufferPointer { lut in
            pool.parallelFor(p.count) { r in
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
        try p.profile.time(.gemm) {
            try linears.patch.forward(pool: pool, images: p.count, tokens: t, tilesPerImage: tilesPerImage(t),
                                      x: bufs.cols, out: x0, bias: w.patchBias, epilogue: .bias)
        }
        p.observe("patch_embed", x0, p.count * t * d)
        p.profile.time(.elementwise) {
            pool.parallelFor(p.count) { r in for b in r { addInPlaceForward(x0 + b * t * d, w.posEmbed, count: t * d) } }
            if let kept = p.kept {
                let dst = bufs.blocks[0].input, tb = p.tokens
                pool.parallelFor(p.count) { r in
                    for b in r { for j in 0..<tb { (dst + (b * tb + j) * d).update(from: x0 + (b * t + Int(kept[b * tb + j])) * d, count: d) } }
                }
            }
        }
    }

    /// Transformer block `i`: middle = input + proj(attention(norm1(input))),
    /// output = middle + fc2(relu6(fc1(norm2(middle)))). Row-wise steps run inside the product
    /// before them, on the tile each worker just wrote: ReLU6 in fc1's; for inference (residuals
    /// fused, the stream updated in place) also norm2 in proj's and the next block's norm1 in fc2's
    /// (`next`), so a block is four dispatches.
    private func block(_ i: Int, _ blk: ViTWeights.Block, next: ViTWeights.Block?, _ p: Pass) throws {
        let c = config, d = c.embedDim, a = buffers.blocks[i], l = linears.blocks[i], bufs = buffers
        let scales = p.noise?.branchScales.map { $0[(i * 2 * p.count)..<((i * 2 + 2) * p.count)] }
        if i == 0 || !p.fuseResiduals {
            layerNorm(out: a.norm1, mean: a.mean1, rstd: a.rstd1, x: a.input, weight: blk.norm1Weight, bias: blk.norm1Bias, p)
        }
        try gemm(l.qkv, x: a.norm1, out: a.qkv, p)
        let tasks = p.count * c.numHeads, tb = p.tokens
        p.profile.time(.attention) { pool.run { worker in
            for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                let b = task / c.numHeads
                kernels.attentionHead(a.attention + b * tb * d, a.probabilities(task: task, worker: worker),
                                      a.qkv + b * tb * 3 * d, tb, d, c.numHeads, task % c.numHeads,
                                      bufs.attentionScratch + worker * bufs.attentionScratchCount)
            }
        } }
        if p.fuseResiduals {
            try gemm(l.proj, x: a.attention, out: a.middle, bias: blk.projBias, epilogue: .biasAccumulate, p) { lo, n in
                Self.layerNormRows(out: a.norm2, mean: a.mean2, rstd: a.rstd2, x: a.middle, weight: blk.norm2Weight,
                                   bias: blk.norm2Bias, from: lo, rows: n, dim: d)
            }
        } else {
            try residualBranch(l.proj, x: a.attention, bias: blk.projBias, stream: a.input, out: a.middle,
                               scales: scales.map { $0.prefix(p.count) }, name: "blocks.\(i).attn", p)
            layerNorm(out: a.norm2, mean: a.mean2, rstd: a.rstd2, x: a.middle, weight: blk.norm2Weight, bias: blk.norm2Bias, p)
        }
        // ReLU6 after the product, not as oneDNN's fused clip: that turns NaN into a number where
        // PyTorch's keeps it (a non-finite step must stay visible to the trainer's policy).
        let hid = c.mlpHiddenDim
        try gemm(l.fc1, x: a.norm2, out: a.hidden, bias: blk.fc1Bias, epilogue: .bias, p) { lo, n in
            biasActivationForward(a.hidden + lo * hid, bias: nil, rows: n, cols: hid, activation: .relu6)
        }
        if p.fuseResiduals {
            let following = next.map { (buffers.blocks[i + 1], $0) }
            try gemm(l.fc2, x: a.hidden, out: a.output, bias: blk.fc2Bias, epilogue: .biasAccumulate, p) { lo, n in
                guard let (nb, nw) = following else { return }
                Self.layerNormRows(out: nb.norm1, mean: nb.mean1, rstd: nb.rstd1, x: nb.input, weight: nw.norm1Weight,
                                   bias: nw.norm1Bias, from: lo, rows: n, dim: d)
            }
        } else {
            try residualBranch(l.fc2, x: a.hidden, bias: blk.fc2Bias, stream: a.middle, out: a.output,
                               scales: scales.map { $0.suffix(p.count) }, name: "blocks.\(i).mlp", p)
        }
        p.observe("blocks.\(i)", a.output, p.rows * d)
    }

    /// A token Linear's forward product (`afterTile` as `TokenLinear.forward`'s, timed with it).
    private func gemm(_ l: TokenLinear, x: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                      bias: UnsafeMutablePointer<Float>? = nil, epilogue: LinearEpilogue = .plain, _ p: Pass,
                      afterTile: (Int, Int) -> Void = { _, _ in }) throws {
        try p.profile.time(.gemm) {
            try l.forward(pool: pool, images: p.count, tokens: p.tokens, tilesPerImage: p.tilesPerImage, x: x, out: out,
                          bias: bias, epilogue: epilogue, afterTile: afterTile)
        }
    }

    /// out = stream + scale·(x·Wᵀ + bias): fused into the GEMM (added to the stream in place) for
    /// inference; otherwise the branch output goes to `buffers.branch` (observed as `name`) and is
    /// added with each image's drop-path scale.
    private func residualBranch(_ l: TokenLinear, x: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
                                stream: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>,
                                scales: ArraySlice<Float>?, name: String, _ p: Pass) throws {
        let d = config.embedDim, y = buffers.branch, tb = p.tokens
        if p.fuseResiduals {  // inference buffers: the stream is updated in place, no drop path
            try gemm(l, x: x, out: out, bias: bias, epilogue: .biasAccumulate, p)
            return
        }
        try gemm(l, x: x, out: y, bias: bias, epilogue: .bias, p)
        p.profile.time(.elementwise) {
            if let scales {
                pool.parallelFor(p.count) { r in
                    for b in r {
                        let o = b * tb * d
                        residualForward(out: out + o, x: stream + o, y: y + o, rows: tb, cols: d, scale: scales[scales.startIndex + b])
                    }
                }
            } else {
                overRows(p.rows) { lo, n in residualForward(out: out + lo * d, x: stream + lo * d, y: y + lo * d, rows: n, cols: d) }
            }
        }
        p.observe(name, y, p.rows * d)
    }

    private func layerNorm(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
                           x: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
                           _ p: Pass) {
        let d = config.embedDim
        p.profile.time(.norms) { overRows(p.rows) { lo, n in
            Self.layerNormRows(out: out, mean: mean, rstd: rstd, x: x, weight: weight, bias: bias, from: lo, rows: n, dim: d)
        } }
    }

    /// The ViT's LayerNorm of rows `from ..< from + rows` of `x` (row length `dim`).
    private static func layerNormRows(out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?,
                                      rstd: UnsafeMutablePointer<Float>?, x: UnsafeMutablePointer<Float>,
                                      weight: UnsafeMutablePointer<Float>, bias: UnsafeMutablePointer<Float>,
                                      from lo: Int, rows n: Int, dim d: Int) {
        layerNormForward(out: out + lo * d, mean: mean.map { $0 + lo }, rstd: rstd.map { $0 + lo }, x: x + lo * d,
                         weight: weight, bias: bias, rows: n, dim: d, eps: ViTConfig.layerNormEps)
    }

    /// Final LayerNorm; with token masking the tokens go back to patch order, masked positions
    /// holding the mask token.
    private func finalNorm(_ w: ViTWeights, _ p: Pass) {
        let c = config, t = c.numPatches, d = c.embedDim, bufs = buffers, tb = p.tokens
        let normOut = p.kept == nil ? bufs.norm : bufs.branch
        layerNorm(out: normOut, mean: bufs.meanFinal, rstd: bufs.rstdFinal, x: bufs.blocks[c.depth - 1].output,
                  weight: w.normWeight, bias: w.normBias, p)
        if let kept = p.kept {
            p.profile.time(.elementwise) { pool.parallelFor(p.count) { r in
                for b in r {
                    for j in 0..<t { (bufs.norm + (b * t + j) * d).update(from: w.maskToken, count: d) }
                    for j in 0..<tb { (bufs.norm + (b * t + Int(kept[b * tb + j])) * d).update(from: normOut + (b * tb + j) * d, count: d) }
                }
            } }
        }
        p.observe("norm", bufs.norm, p.count * t * d)
    }

    /// SE gate: sigmoid(W2 · relu(W1 · flatten(tokens))) scales each token; its softmax ranks
    /// patches. A plain ViT passes the tokens through with equal patch weights.
    private func seGate(_ w: ViTWeights, _ p: Pass) {
        let t = config.numPatches, d = config.embedDim, bufs = buffers, patchRows = p.count * t
        if let se = w.se {
            p.profile.time(.head) {
                rowLinear(t * d, t, bufs.norm, se.w0, linears.rowWeights?.se0, bufs.se1, p)
                biasActivationForward(bufs.se1, bias: nil, rows: p.count, cols: t, activation: .relu)
                rowLinear(t, t, bufs.se1, se.w2, linears.rowWeights?.se2, bufs.se2, p)
                biasActivationForward(bufs.se2, bias: nil, rows: p.count, cols: t, activation: .sigmoid)
            }
            p.observe("senet", bufs.se2, p.count * t)
            p.profile.time(.elementwise) {
                bufs.patchWeight.update(from: bufs.se2, count: p.count * t)
                softmaxRowsForward(bufs.patchWeight, rows: p.count, cols: t)
                overRows(patchRows) { lo, n in scaleRowsForward(out: bufs.gated + lo * d, x: bufs.norm + lo * d, scale: bufs.se2 + lo, rows: n, cols: d) }
            }
        } else {
            bufs.patchWeight.update(repeating: 1 / Float(t), count: p.count * t)
            bufs.gated.update(from: bufs.norm, count: patchRows * d)
        }
        p.observe("feature.input", bufs.gated, patchRows * d)
        p.profile.time(.elementwise) {
            overRows(patchRows) { lo, n in rowStdForward(out: bufs.patchStd + lo, x: bufs.gated + lo * d, rows: n, cols: d) }
        }
    }

    /// Head: Linear(P·D→D) → BN → Linear(D→E) → BN.
    private func head(_ w: ViTWeights, mode: ForwardMode, _ p: Pass) {
        let c = config, t = c.numPatches, d = c.embedDim, e = c.embeddingSize, bufs = buffers
        let train = mode != .eval, update = mode == .train(updateRunningStatistics: true)
        p.profile.time(.head) { rowLinear(t * d, d, bufs.gated, w.feature0Weight, linears.rowWeights?.feature0, bufs.f0, p) }
        p.observe("feature.0", bufs.f0, p.count * d)
        p.profile.time(.norms) { batchNormForward(out: bufs.f1, x: bufs.f0, rows: p.count, features: d, weight: w.feature1.weight,
                         bias: w.feature1.bias, runningMean: w.feature1.runningMean, runningVar: w.feature1.runningVar,
                         eps: ViTConfig.batchNormEps, useBatchStatistics: train, updateRunning: update,
                         saveMean: bufs.bn1Mean, saveRstd: bufs.bn1Rstd) }
        p.observe("feature.1", bufs.f1, p.count * d)
        p.profile.time(.head) { rowLinear(d, e, bufs.f1, w.feature2Weight, linears.rowWeights?.feature2, bufs.f2, p) }
        p.observe("feature.2", bufs.f2, p.count * e)
        p.profile.time(.norms) { batchNormForward(out: bufs.f3, x: bufs.f2, rows: p.count, features: e, weight: w.feature3.weight,
                         bias: w.feature3.bias, runningMean: w.feature3.runningMean, runningVar: w.feature3.runningVar,
                         eps: ViTConfig.batchNormEps, useBatchStatistics: train, updateRunning: update,
                         saveMean: bufs.bn3Mean, saveRstd: bufs.bn3Rstd) }
        p.observe("feature.3", bufs.f3, p.count * e)
    }

    /// Per-image Linear for the SE and head layers (few long rows), output features split across
    /// workers; reads the bf16 copy of the weight when there is one.
    private func rowLinear(_ inF: Int, _ outF: Int, _ input: UnsafeMutablePointer<Float>, _ weight: UnsafeMutablePointer<Float>,
                           _ bf16: UnsafeMutablePointer<UInt16>?, _ output: UnsafeMutablePointer<Float>, _ p: Pass) {
        pool.parallelFor(outF) { r in
            if let bf16 {
                rowLinearForward(out: output, x: input, weight: BF16Weights(bf16), rows: p.count, inFeatures: inF,
                                 outFeatures: outF, outputs: r)
            } else {
                rowLinearForward(out: output, x: input, weight: UnsafePointer(weight), rows: p.count, inFeatures: inF,
                                 outFeatures: outF, outputs: r)
            }
        }
    }
}
