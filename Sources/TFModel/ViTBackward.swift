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

    /// Accumulates into `grads` the gradient of a loss whose gradient with respect to the raw
    /// embeddings (BatchNorm output, before L2 normalisation) is `dEmbedding` [batch × E] and,
    /// optionally, with respect to the patch std [batch × P] (EHSM's paper mode).
    public func run(weights w: ViTWeights, grads g: ViTWeights, forward: ViTForward,
                    dEmbedding: UnsafePointer<Float>, dPatchStd: UnsafePointer<Float>? = nil) throws {
        try require(forward.config == config && forward.lastCount == batch,
                    "backward needs the forward pass of the same \(batch)-image batch")
        let c = config, t = c.numPatches, d = c.embedDim, hid = c.mlpHiddenDim, e = c.embeddingSize
        let f = forward.buffers, noise = forward.lastNoise
        let kept = noise?.keptTokens, tb = kept == nil ? t : noise!.keep
        var rows = batch * t
        guard let meanFinal = f.meanFinal, let rstdFinal = f.rstdFinal else {
            throw TransFaceError(.misuse, "the forward pass did not keep its activations (keepActivations: false)")
        }
        func overRows(_ n: Int, _ body: (Int, Int) -> Void) { pool.parallelFor(n) { r in body(r.lowerBound, r.count) } }
        try forward.linears.packForBackward(w)
        let tiles = forward.tilesPerImage(tb)
        /// dW += dyᵀ·x and dx = dy·W of a block Linear over the kept tokens.
        func linearBackward(_ l: TokenLinear, dy: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>,
                            dweight: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>) throws {
            try l.backwardWeights(pool: pool, rows: batch * tb, dy: dy, x: x, dweight: dweight)
            try l.backwardInput(pool: pool, images: batch, tokens: tb, tilesPerImage: tiles, dy: dy, dx: dx)
        }

        // Head: BN3 ← Linear(D→E) ← BN1 ← Linear(P·D→D).
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
            overRows(rows) { lo, n in
                rowStdBackwardAccumulate(dx: dgated + lo * d, dstd: dPatchStd + lo, x: f.gated + lo * d,
                                         std: f.patchStd + lo, rows: n, cols: d)
            }
        }

        if let se = w.se, let gse = g.se {
            // SE gate: gated = norm · s, s = sigmoid(W2 · relu(W1 · flatten(norm))).
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
        } else {  // plain ViT: the head saw the normalised tokens themselves
            dn.update(from: dgated, count: rows * d)
        }

        // Token masking: the mask token collects the gradient of the masked positions; the
        // blocks see only the kept tokens, in their order.
        var dNormKept = dn
        if let kept {
            var masked = [Bool](repeating: true, count: batch * t)
            for b in 0..<batch { for j in 0..<tb { masked[b * t + Int(kept[b * tb + j])] = false } }
            for r in 0..<(batch * t) where masked[r] {
                for j in 0..<d { g.maskToken[j] += dn[r * d + j] }
            }
            pool.parallelFor(batch) { r in
                for b in r { for j in 0..<tb { (dgated + (b * tb + j) * d).update(from: dn + (b * t + Int(kept[b * tb + j])) * d, count: d) } }
            }
            dNormKept = dgated
        }
        rows = batch * tb

        // Final LayerNorm.
        let xLast = f.blocks[c.depth - 1].output
        dx.update(repeating: 0, count: rows * d)
        layerNorm(dout: dNormKept, x: xLast, mean: meanFinal, rstd: rstdFinal, weight: w.normWeight,
                  dweight: g.normWeight, dbias: g.normBias)

        for i in stride(from: c.depth - 1, through: 0, by: -1) {
            let a = f.blocks[i], blk = w.blocks[i], gb = g.blocks[i], l = forward.linears.blocks[i]
            let scales = noise?.branchScales.map { Array($0[(i * 2 * batch)..<((i * 2 + 2) * batch)]) }
            // MLP branch: the gradient of fc2's output is dx (times the drop-path scale).
            let dMLP = branchGradient(scales.map { Array($0.suffix(batch)) })
            biasBackward(gb.fc2Bias, dMLP, d)
            try linearBackward(l.fc2, dy: dMLP, x: a.hidden, dweight: gb.fc2Weight, dx: dhidden)
            overRows(rows) { lo, n in relu6Backward(dhidden + lo * hid, output: a.hidden + lo * hid, count: n * hid) }
            biasBackward(gb.fc1Bias, dhidden, hid)
            try linearBackward(l.fc1, dy: dhidden, x: a.norm2, dweight: gb.fc1Weight, dx: dn)
            layerNorm(dout: dn, x: a.middle, mean: a.mean2!, rstd: a.rstd2!, weight: blk.norm2Weight,
                      dweight: gb.norm2Weight, dbias: gb.norm2Bias)

            // Attention branch: dx is now the gradient of the block's middle stream.
            let dProj = branchGradient(scales.map { Array($0.prefix(batch)) })
            biasBackward(gb.projBias, dProj, d)
            try linearBackward(l.proj, dy: dProj, x: a.attention, dweight: gb.projWeight, dx: dattn)
            let tasks = batch * c.numHeads
            pool.run { worker in
                for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                    let b = task / c.numHeads
                    attentionHeadBackward(dqkv: dqkv + b * tb * 3 * d, scratch: scratch + worker * t * t,
                                          dout: dattn + b * tb * d, probs: a.probabilities(task: task, worker: worker),
                                          qkv: a.qkv + b * tb * 3 * d, tokens: tb, dim: d, heads: c.numHeads,
                                          head: task % c.numHeads)
                }
            }
            try linearBackward(l.qkv, dy: dqkv, x: a.norm1, dweight: gb.qkvWeight, dx: dn)
            layerNorm(dout: dn, x: a.input, mean: a.mean1!, rstd: a.rstd1!, weight: blk.norm1Weight,
                      dweight: gb.norm1Weight, dbias: gb.norm1Bias)
        }

        // Patch embedding and position embedding (masked positions received no gradient).
        var dTokens = dx
        if let kept {
            dn.update(repeating: 0, count: batch * t * d)
            pool.parallelFor(batch) { r in
                for b in r { for j in 0..<tb { (dn + (b * t + Int(kept[b * tb + j])) * d).update(from: dx + (b * tb + j) * d, count: d) } }
            }
            dTokens = dn
        }
        rows = batch * t
        pool.parallelFor(t * d) { r in
            for b in 0..<batch {
                let src = dTokens + b * t * d
                for j in r { g.posEmbed[j] += src[j] }
            }
        }
        biasBackward(g.patchBias, dTokens, d)
        try forward.linears.patch.backwardWeights(pool: pool, rows: rows, dy: dTokens, x: f.cols, dweight: g.patchWeight)

        /// The gradient of a residual branch's output: dx, or dx times each image's drop-path scale.
        func branchGradient(_ scales: [Float]?) -> UnsafeMutablePointer<Float> {
            guard let scales else { return dx }
            pool.parallelFor(batch) { r in
                for b in r { for j in 0..<(tb * d) { dgated[b * tb * d + j] = dx[b * tb * d + j] * scales[b] } }
            }
            return dgated
        }

        /// dx += LayerNorm backward of `dout`; parameter gradients accumulate.
        func layerNorm(dout: UnsafeMutablePointer<Float>, x: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                       rstd: UnsafeMutablePointer<Float>, weight: UnsafeMutablePointer<Float>,
                       dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>) {
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
        func biasBackward(_ dbias: UnsafeMutablePointer<Float>, _ dy: UnsafeMutablePointer<Float>, _ cols: Int) {
            pool.parallelFor(cols) { r in columnSumAccumulate(dbias, dy, rows: rows, cols: cols, columns: r) }
        }
    }
}
