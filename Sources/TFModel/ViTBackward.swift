import TFCore
import TFKernels

/// Backward pass of the TransFace ViT through the activations a training-mode `ViTForward`
/// (`keepActivations: true`) kept. Parameter gradients accumulate into a slab laid out like
/// the parameters (`ViTWeights` over the gradient slab); the workspace is allocated once. The
/// token Linears' two backward products run on the forward pass's `TokenLinear`s (matmul
/// backend; W packed for the input gradient at the start of each run), the head's on OpenBLAS.
public final class ViTBackward {
    public let config: ViTConfig
    public let batch: Int
    private let pool: WorkerPool
    private let slab: FloatSlab
    private let dx, dn, dqkv, dhidden, dattn, scratch, dgated, dseA, dseB, dfD0, dfD1, dfE: UnsafeMutablePointer<Float>

    public init(config: ViTConfig, batch: Int, pool: WorkerPool) throws {
        self.config = config
        self.batch = batch
        self.pool = pool
        let t = config.numPatches, d = config.embedDim
        let rows = try checkedProduct([batch, t], what: "backward workspace")
        var plan = SlabPlanner()
        let o = [plan.reserve(rows * d), plan.reserve(rows * d), plan.reserve(rows * 3 * d),
                 plan.reserve(rows * config.mlpHiddenDim), plan.reserve(rows * d), plan.reserve(pool.threadCount * t * t),
                 plan.reserve(rows * d), plan.reserve(rows), plan.reserve(rows), plan.reserve(batch * d),
                 plan.reserve(batch * d), plan.reserve(batch * config.embeddingSize)]
        let slab = try FloatSlab(count: plan.total)
        self.slab = slab
        let p = o.map { slab.base + $0 }
        (dx, dn, dqkv, dhidden, dattn, scratch) = (p[0], p[1], p[2], p[3], p[4], p[5])
        (dgated, dseA, dseB, dfD0, dfD1, dfE) = (p[6], p[7], p[8], p[9], p[10], p[11])
    }

    public var workspaceBytes: Int { slab.count * 4 }

    /// What one backward run works with: the forward pass it follows and its token layout.
    private struct Pass {
        let forward: ViTForward
        let kept: [Int32]?
        let noise: TrainingNoise?
        /// Tokens the blocks saw per image, and the row tiles of their GEMMs.
        let tokens, tilesPerImage: Int
    }

    /// Accumulates into `grads` the gradient of a loss whose gradient with respect to the raw
    /// embeddings (BatchNorm output, before L2 normalisation) is `dEmbedding` [batch × E] and,
    /// optionally, with respect to the patch std [batch × P] (EHSM's paper mode). The stages
    /// mirror the forward pass's, in reverse.
    public func run(weights w: ViTWeights, grads g: ViTWeights, forward: ViTForward,
                    dEmbedding: UnsafePointer<Float>, dPatchStd: UnsafePointer<Float>? = nil) throws {
        try require(forward.config == config && forward.lastCount == batch,
                    "backward needs the forward pass of the same \(batch)-image batch")
        guard forward.buffers.meanFinal != nil else {
            throw TransFaceError(.misuse, "the forward pass did not keep its activations (keepActivations: false)")
        }
        let noise = forward.lastNoise, kept = noise?.keptTokens
        let tb = kept == nil ? config.numPatches : noise!.keep
        try forward.linears.packForBackward(w)
        let pass = Pass(forward: forward, kept: kept, noise: noise, tokens: tb, tilesPerImage: forward.tilesPerImage(tb))
        head(w, g, dEmbedding: dEmbedding, dPatchStd: dPatchStd, pass)
        seGate(w, g, pass)
        finalNorm(w, g, pass)
        for i in stride(from: config.depth - 1, through: 0, by: -1) { try block(i, w.blocks[i], g.blocks[i], pass) }
        try embedPatches(g, pass)
    }

    private func overRows(_ n: Int, _ body: (Int, Int) -> Void) { pool.parallelFor(n) { r in body(r.lowerBound, r.count) } }

    /// Head: BN3 ← Linear(D→E) ← BN1 ← Linear(P·D→D), into `dgated` (+ the patch std's gradient).
    private func head(_ w: ViTWeights, _ g: ViTWeights, dEmbedding: UnsafePointer<Float>, dPatchStd: UnsafePointer<Float>?,
                      _ p: Pass) {
        let t = config.numPatches, d = config.embedDim, e = config.embeddingSize, f = p.forward.buffers
        batchNormTrainBackward(dx: dfE, dweight: g.feature3.weight, dbias: g.feature3.bias, dy: dEmbedding, x: f.f2,
                               mean: f.bn3Mean, rstd: f.bn3Rstd, weight: w.feature3.weight, rows: batch, features: e)
        BLAS.linearBackwardWeights(pool: pool, rows: batch, inFeatures: d, outFeatures: e, dy: dfE, x: f.f1, dweight: g.feature2Weight)
        BLAS.gemm(m: batch, n: d, k: e, a: dfE, lda: e, b: w.feature2Weight, ldb: d, transposeB: false, c: dfD1, ldc: d)
        batchNormTrainBackward(dx: dfD0, dweight: g.feature1.weight, dbias: g.feature1.bias, dy: dfD1, x: f.f0,
                               mean: f.bn1Mean, rstd: f.bn1Rstd, weight: w.feature1.weight, rows: batch, features: d)
        BLAS.linearBackwardWeights(pool: pool, rows: batch, inFeatures: t * d, outFeatures: d, dy: dfD0, x: f.gated,
                                   dweight: g.feature0Weight)
        BLAS.linearBackwardInput(pool: pool, rows: batch, inFeatures: t * d, outFeatures: d, dy: dfD0,
                                 weight: w.feature0Weight, dx: dgated)
        if let dPatchStd {
            let dgated = self.dgated
            overRows(batch * t) { lo, n in
                rowStdBackwardAccumulate(dx: dgated + lo * d, dstd: dPatchStd + lo, x: f.gated + lo * d,
                                         std: f.patchStd + lo, rows: n, cols: d)
            }
        }
    }

    /// SE gate (gated = norm · s, s = sigmoid(W2 · relu(W1 · flatten(norm)))): `dgated` → `dn`.
    private func seGate(_ w: ViTWeights, _ g: ViTWeights, _ p: Pass) {
        let t = config.numPatches, d = config.embedDim, rows = batch * t, f = p.forward.buffers
        guard let se = w.se, let gse = g.se else {  // plain ViT: the head saw the normalised tokens themselves
            dn.update(from: dgated, count: rows * d)
            return
        }
        let (dn, dgated, dseA) = (self.dn, self.dgated, self.dseA)
        overRows(rows) { lo, n in
            scaleRowsBackward(dx: dn + lo * d, dscale: dseA + lo, dgated: dgated + lo * d, x: f.norm + lo * d,
                              scale: f.se2 + lo, rows: n, cols: d)
        }
        sigmoidBackward(dseA, output: f.se2, count: rows)
        BLAS.linearBackwardWeights(pool: pool, rows: batch, inFeatures: t, outFeatures: t, dy: dseA, x: f.se1, dweight: gse.w2)
        BLAS.gemm(m: batch, n: t, k: t, a: dseA, lda: t, b: se.w2, ldb: t, transposeB: false, c: dseB, ldc: t)
        reluBackward(dseB, output: f.se1, count: rows)
        BLAS.linearBackwardWeights(pool: pool, rows: batch, inFeatures: t * d, outFeatures: t, dy: dseB, x: f.norm,
                                   dweight: gse.w0)
        BLAS.linearBackwardInput(pool: pool, rows: batch, inFeatures: t * d, outFeatures: t, dy: dseB,
                                 weight: se.w0, dx: dn, beta: 1)
    }

    /// Token masking (the mask token collects the gradient of the masked positions; the blocks
    /// saw only the kept tokens, in their order), then the final LayerNorm into `dx`.
    private func finalNorm(_ w: ViTWeights, _ g: ViTWeights, _ p: Pass) {
        let t = config.numPatches, d = config.embedDim, tb = p.tokens, f = p.forward.buffers
        var dNormKept = dn
        if let kept = p.kept {
            var masked = [Bool](repeating: true, count: batch * t)
            for b in 0..<batch { for j in 0..<tb { masked[b * t + Int(kept[b * tb + j])] = false } }
            for r in 0..<(batch * t) where masked[r] {
                for j in 0..<d { g.maskToken[j] += dn[r * d + j] }
            }
            let (dn, dgated) = (self.dn, self.dgated)
            pool.parallelFor(batch) { r in
                for b in r { for j in 0..<tb { (dgated + (b * tb + j) * d).update(from: dn + (b * t + Int(kept[b * tb + j])) * d, count: d) } }
            }
            dNormKept = dgated
        }
        dx.update(repeating: 0, count: batch * tb * d)
        layerNorm(dout: dNormKept, x: f.blocks[config.depth - 1].output, mean: f.meanFinal!, rstd: f.rstdFinal!,
                  weight: w.normWeight, dweight: g.normWeight, dbias: g.normBias, p)
    }

    /// Transformer block `i`: `dx` holds the gradient of its output on entry and of its input on return.
    private func block(_ i: Int, _ blk: ViTWeights.Block, _ gb: ViTWeights.Block, _ p: Pass) throws {
        let c = config, t = c.numPatches, d = c.embedDim, hid = c.mlpHiddenDim, tb = p.tokens, rows = batch * tb
        let a = p.forward.buffers.blocks[i], l = p.forward.linears.blocks[i]
        let scales = p.noise?.branchScales.map { Array($0[(i * 2 * batch)..<((i * 2 + 2) * batch)]) }
        // MLP branch: the gradient of fc2's output is dx (times the drop-path scale).
        let dMLP = branchGradient(scales.map { Array($0.suffix(batch)) }, p)
        biasBackward(gb.fc2Bias, dMLP, rows: rows, cols: d)
        try linearBackward(l.fc2, dy: dMLP, x: a.hidden, dweight: gb.fc2Weight, dx: dhidden, p)
        let dhidden = self.dhidden
        overRows(rows) { lo, n in relu6Backward(dhidden + lo * hid, output: a.hidden + lo * hid, count: n * hid) }
        biasBackward(gb.fc1Bias, dhidden, rows: rows, cols: hid)
        try linearBackward(l.fc1, dy: dhidden, x: a.norm2, dweight: gb.fc1Weight, dx: dn, p)
        layerNorm(dout: dn, x: a.middle, mean: a.mean2!, rstd: a.rstd2!, weight: blk.norm2Weight,
                  dweight: gb.norm2Weight, dbias: gb.norm2Bias, p)

        // Attention branch: dx is now the gradient of the block's middle stream.
        let dProj = branchGradient(scales.map { Array($0.prefix(batch)) }, p)
        biasBackward(gb.projBias, dProj, rows: rows, cols: d)
        try linearBackward(l.proj, dy: dProj, x: a.attention, dweight: gb.projWeight, dx: dattn, p)
        let tasks = batch * c.numHeads, (dqkv, dattn, scratch) = (self.dqkv, self.dattn, self.scratch)
        pool.run { worker in
            for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                let b = task / c.numHeads
                attentionHeadBackward(dqkv: dqkv + b * tb * 3 * d, scratch: scratch + worker * t * t,
                                      dout: dattn + b * tb * d, probs: a.probabilities(task: task, worker: worker),
                                      qkv: a.qkv + b * tb * 3 * d, tokens: tb, dim: d, heads: c.numHeads,
                                      head: task % c.numHeads)
            }
        }
        try linearBackward(l.qkv, dy: dqkv, x: a.norm1, dweight: gb.qkvWeight, dx: dn, p)
        layerNorm(dout: dn, x: a.input, mean: a.mean1!, rstd: a.rstd1!, weight: blk.norm1Weight,
                  dweight: gb.norm1Weight, dbias: gb.norm1Bias, p)
    }

    /// Patch and position embedding (masked positions received no gradient).
    private func embedPatches(_ g: ViTWeights, _ p: Pass) throws {
        let t = config.numPatches, d = config.embedDim, tb = p.tokens
        var dTokens = dx
        if let kept = p.kept {
            let (dn, dx) = (self.dn, self.dx)
            dn.update(repeating: 0, count: batch * t * d)
            pool.parallelFor(batch) { r in
                for b in r { for j in 0..<tb { (dn + (b * t + Int(kept[b * tb + j])) * d).update(from: dx + (b * tb + j) * d, count: d) } }
            }
            dTokens = dn
        }
        let batch = self.batch
        pool.parallelFor(t * d) { r in
            for b in 0..<batch {
                let src = dTokens + b * t * d
                for j in r { g.posEmbed[j] += src[j] }
            }
        }
        biasBackward(g.patchBias, dTokens, rows: batch * t, cols: d)
        try p.forward.linears.patch.backwardWeights(pool: pool, rows: batch * t, dy: dTokens, x: p.forward.buffers.cols,
                                                    dweight: g.patchWeight)
    }

    /// dW += dyᵀ·x and dx = dy·W of a block Linear over the kept tokens.
    private func linearBackward(_ l: TokenLinear, dy: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>,
                                dweight: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>, _ p: Pass) throws {
        try l.backwardWeights(pool: pool, rows: batch * p.tokens, dy: dy, x: x, dweight: dweight)
        try l.backwardInput(pool: pool, images: batch, tokens: p.tokens, tilesPerImage: p.tilesPerImage, dy: dy, dx: dx)
    }

    /// The gradient of a residual branch's output: dx, or dx times each image's drop-path scale.
    private func branchGradient(_ scales: [Float]?, _ p: Pass) -> UnsafeMutablePointer<Float> {
        guard let scales else { return dx }
        let n = p.tokens * config.embedDim, (dx, dgated) = (self.dx, self.dgated)
        pool.parallelFor(batch) { r in
            for b in r { for j in 0..<n { dgated[b * n + j] = dx[b * n + j] * scales[b] } }
        }
        return dgated
    }

    /// dx += LayerNorm backward of `dout` over the kept tokens; parameter gradients accumulate.
    private func layerNorm(dout: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                           rstd: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
                           dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>, _ p: Pass) {
        let d = config.embedDim, rows = batch * p.tokens, dx = self.dx
        pool.parallelFor(d) { r in
            layerNormBackwardParams(dweight: dweight, dbias: dbias, dout: dout, x: x, mean: mean, rstd: rstd,
                                    rows: rows, dim: d, features: r)
        }
        overRows(rows) { lo, n in
            layerNormBackwardInputAccumulate(dx: dx + lo * d, dout: dout + lo * d, x: x + lo * d, mean: mean + lo,
                                             rstd: rstd + lo, weight: weight, rows: n, dim: d)
        }
    }

    /// Bias gradient: column sums of `dy` [rows × cols].
    private func biasBackward(_ dbias: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        pool.parallelFor(cols) { r in columnSumAccumulate(dbias, dy, rows: rows, cols: cols, columns: r) }
    }
}
