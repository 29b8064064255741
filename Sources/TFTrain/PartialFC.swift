#if canImport(Glibc)
import Glibc
#endif
import TFCore
import TFDistributed

/// The classification head of TransFace training: class centres `W [C × E]`, Partial FC
/// sampling, `logits = clamp(normalize(emb) · normalize(W_s)ᵀ, −1, 1)` (F.normalize, eps 1e−12),
/// the margin (`MarginConfig`) and the EHSM-weighted cross entropy (`WeightedCrossEntropy`),
/// forward and backward to the embeddings and the centres.
///
/// Sampling (`sampleRate < 1`) follows the official `PartialFC.sample` (arcface_torch, as
/// TransFace's `partial_fc_exp`): the positives are the batch's unique labels; if
/// `numSample = int(sampleRate · C)` is at least their number, `numSample − positives` negatives
/// are added uniformly at random without replacement, else only the positives are used; the
/// active classes are kept sorted and labels are remapped to their index (`searchsorted`).
/// Difference: the official code draws `torch.rand(C)`, sets the positives to 2 and takes the
/// top-k; we draw the same distribution (a uniform subset of the negatives) by selection
/// sampling (Knuth's algorithm S) from `rng`, our explicit `SeededRNG` stream, so the subsets are
/// not torch's. Only the active centres get gradients (rows of `gradient` for other classes are
/// not written) and only they should be updated: `step(optimizer:)` calls `stepRows`, so the
/// optimizer moments of the other centres stay untouched (the official `PartialFC`/
/// `PartialFCAdamW` behaviour; arcface_torch's later `partial_fc_v2` instead updates every
/// centre's moments with a zero gradient).
///
/// Sharded by class (`shard` and `communicator`, arcface_torch's `PartialFC_V2` over ranks): this
/// object holds rows `shard.range` of the centres; `forward` takes the whole (all-gathered)
/// batch with global labels; each rank samples among its own classes (keeping every positive of
/// the batch that it owns); the softmax is distributed (allreduce of each row's max, then of its
/// sum of exponentials, then of the per-sample nll); `backward`'s embedding gradient is summed
/// over ranks (the all-gather's transpose), the centres' stays local. Over a
/// `SingleProcessCommunicator` every result is bit-identical to the unsharded head.
///
/// Memory: parameters and gradients are one slab each; one workspace slab holds everything a step
/// needs (the largest pieces are two `maxBatch × maxActive` float buffers), so `forward` and
/// `backward` allocate nothing. GEMMs run in the caller's `WorkerPool` (OpenBLAS single-threaded).
public final class PartialFC {
    /// Classes (centre rows) held here: all of them, or the shard's.
    public let numClasses: Int
    /// First class held here, and the number of classes of the whole head (over every shard).
    public let classStart: Int
    public let totalClasses: Int
    /// Reduces the softmax and the embedding gradient across ranks (nil: one process, no shard).
    public let communicator: (any Communicator)?
    public let embeddingSize: Int
    public let maxBatch: Int
    /// Fraction of the classes used per step (1 = all, no sampling).
    public let sampleRate: Double
    /// `int(sampleRate · numClasses)`, as the official code.
    public let numSample: Int
    /// Largest number of active classes: `numClasses` without sampling, else
    /// `max(numSample, min(maxBatch, numClasses))`.
    public let maxActive: Int
    public var margin: MarginConfig
    /// The stream that draws the negatives (saved in checkpoints through `rng.state`).
    public var rng: SeededRNG

    /// Class centres `[numClasses × embeddingSize]`, official name `partial_fc.weight`.
    public let weight: FloatSlab
    /// dL/dW, same layout as `weight`. After `backward`, only the active rows hold this step's
    /// gradient (all rows without sampling).
    public let gradient: FloatSlab

    public static let normalizeEps: Float = 1e-12
    public static let tensorName = "partial_fc.weight"

    private var sampling: Bool { sampleRate < 1 }

    // Workspace.
    private let work: FloatSlab
    private let xHat: UnsafeMutablePointer<Float>        // maxBatch × E
    private let dxHat: UnsafeMutablePointer<Float>       // maxBatch × E
    private let xNorm: UnsafeMutablePointer<Float>       // maxBatch (unclamped ‖x‖)
    private let wNorm: UnsafeMutablePointer<Float>       // maxActive (unclamped ‖W_c‖)
    private let rawCos: UnsafeMutablePointer<Float>      // maxBatch × maxActive (unclamped cosines)
    private let scratch: UnsafeMutablePointer<Float>     // maxBatch × maxActive (margin → p → gradient)
    private let activeWeight: UnsafeMutablePointer<Float>    // maxActive × E when sampling, else `weight`
    private let activeGradient: UnsafeMutablePointer<Float>  // maxActive × E when sampling, else `gradient`
    private let weightsCopy: UnsafeMutablePointer<Float> // maxBatch
    private let nll: UnsafeMutablePointer<Float>         // maxBatch
    private let index: UnsafeMutablePointer<Int32>       // maxActive: active class ids, sorted
    private let labelsOriginal: UnsafeMutablePointer<Int32>  // maxBatch
    private let labelsActive: UnsafeMutablePointer<Int32>    // maxBatch: remapped
    private let positiveMark: UnsafeMutablePointer<UInt8>    // numClasses when sampling
    private let rowMax: UnsafeMutablePointer<Float>          // maxBatch, sharded only
    private let rowSum: UnsafeMutablePointer<Double>         // maxBatch, sharded only

    private enum Phase { case empty, forwarded, backwarded }
    private var phase = Phase.empty
    /// Batch size of the last `forward`.
    public private(set) var batch = 0
    /// Number of active (sampled) classes of the last `forward`.
    public private(set) var activeCount = 0
    /// Loss of the last `forward`.
    public private(set) var loss = Double.nan

    public init(numClasses: Int, embeddingSize: Int, maxBatch: Int, sampleRate: Double = 1, margin: MarginConfig,
                rng: SeededRNG = SeededRNG(seed: 0, stream: 0), shard: ClassShard? = nil, communicator: (any Communicator)? = nil) throws {
        try require(numClasses >= 1 && numClasses <= Int(Int32.max), "partial fc: num_classes \(numClasses) is outside 1...\(Int32.max)")
        try require((shard == nil) == (communicator == nil), "partial fc: a class shard needs a communicator and vice versa")
        if let shard {
            try require(shard.total == numClasses && shard.count >= 1 && shard.start >= 0 && shard.start + shard.count <= numClasses,
                        "partial fc: shard \(shard.start)..<\(shard.start + shard.count) does not fit \(numClasses) classes")
        }
        totalClasses = numClasses
        classStart = shard?.start ?? 0
        self.communicator = communicator
        let numClasses = shard?.count ?? numClasses
        try require(embeddingSize >= 1, "partial fc: embedding size \(embeddingSize) must be positive")
        try require(maxBatch >= 1, "partial fc: max batch \(maxBatch) must be positive")
        try require(sampleRate.isFinite && sampleRate > 0 && sampleRate <= 1, "partial fc: sample_rate \(sampleRate) is outside (0, 1]")
        self.numClasses = numClasses
        self.embeddingSize = embeddingSize
        self.maxBatch = maxBatch
        self.sampleRate = sampleRate
        self.numSample = sampleRate >= 1 ? numClasses : Int(sampleRate * Double(numClasses))
        self.maxActive = sampleRate >= 1 ? numClasses : max(numSample, min(maxBatch, numClasses))
        self.margin = margin
        self.rng = rng
        let e = embeddingSize
        let centres = try checkedProduct([numClasses, e], what: "partial fc centres")
        let logits = try checkedProduct([maxBatch, maxActive], what: "partial fc logits")
        weight = try FloatSlab(count: centres)
        gradient = try FloatSlab(count: centres)

        var plan = SlabPlanner()
        let oXHat = plan.reserve(maxBatch * e), oDXHat = plan.reserve(maxBatch * e)
        let oXNorm = plan.reserve(maxBatch), oWNorm = plan.reserve(maxActive)
        let oRaw = plan.reserve(logits), oScratch = plan.reserve(logits)
        let sampled = sampleRate < 1
        let oActiveW = sampled ? plan.reserve(maxActive * e) : 0
        let oActiveG = sampled ? plan.reserve(maxActive * e) : 0
        let oWeights = plan.reserve(maxBatch), oNLL = plan.reserve(maxBatch)
        work = try FloatSlab(count: plan.total)
        let w = work.base
        xHat = w + oXHat; dxHat = w + oDXHat; xNorm = w + oXNorm; wNorm = w + oWNorm
        rawCos = w + oRaw; scratch = w + oScratch
        activeWeight = sampled ? w + oActiveW : weight.base
        activeGradient = sampled ? w + oActiveG : gradient.base
        weightsCopy = w + oWeights; nll = w + oNLL
        index = .allocate(capacity: maxActive)
        labelsOriginal = .allocate(capacity: maxBatch)
        labelsActive = .allocate(capacity: maxBatch)
        positiveMark = .allocate(capacity: sampled ? numClasses : 1)
        positiveMark.initialize(repeating: 0, count: sampled ? numClasses : 1)
        let rows = communicator == nil ? 1 : maxBatch
        rowMax = .allocate(capacity: rows)
        rowSum = .allocate(capacity: rows)
        if !sampled { for c in 0..<numClasses { index[c] = Int32(c) } }
        activeCount = sampled ? 0 : numClasses
        BLAS.useSingleThread()
    }

    deinit {
        index.deallocate()
        labelsOriginal.deallocate()
        labelsActive.deallocate()
        positiveMark.deallocate()
        rowMax.deallocate()
        rowSum.deallocate()
    }

    /// `torch.normal(0, std, (C, E))` from our stream (the official draws differ).
    public func initializeCentres(rng: inout SeededRNG, std: Double = 0.01) {
        for i in 0..<weight.count { weight.base[i] = Float(rng.normal() * std) }
    }

    // MARK: forward

    /// Forward for `batch` embeddings `[batch × E]` with labels in `0..<numClasses` and optional
    /// per-sample (EHSM) weights (nil = 1). Returns `−mean(w · log max(p_y, 1e−30))`.
    @discardableResult
    public func forward(embeddings: UnsafeBufferPointer<Float>, labels: UnsafeBufferPointer<Int32>, batch: Int,
                        sampleWeights: UnsafeBufferPointer<Float>? = nil, pool: WorkerPool? = nil) throws -> Double {
        try require(batch >= 1 && batch <= maxBatch, "partial fc: batch \(batch) is outside 1...\(maxBatch)")
        try require(embeddings.count >= batch * embeddingSize,
                    "partial fc: embeddings hold \(embeddings.count) floats, need \(batch)×\(embeddingSize)")
        try require(labels.count >= batch, "partial fc: \(labels.count) labels for a batch of \(batch)")
        if let sampleWeights {
            try require(sampleWeights.count >= batch, "partial fc: \(sampleWeights.count) sample weights for a batch of \(batch)")
        }
        for b in 0..<batch {
            let y = labels[b]
            try require(y >= 0 && Int(y) < totalClasses, "partial fc: label \(y) of sample \(b) is outside 0..<\(totalClasses)")
            labelsOriginal[b] = y
            weightsCopy[b] = sampleWeights?[b] ?? 1
        }
        self.batch = batch
        phase = .empty

        if sampling {
            sample(batch: batch)
            let e = embeddingSize
            Self.parallel(pool, activeCount) { r in
                for i in r {
                    (self.activeWeight + i * e).update(from: self.weight.base + Int(self.index[i]) * e, count: e)
                }
            }
        } else {
            activeCount = numClasses
            if communicator == nil {
                labelsActive.update(from: labelsOriginal, count: batch)
            } else {
                for b in 0..<batch { labelsActive[b] = localClass(labelsOriginal[b]).map(Int32.init) ?? -1 }
            }
        }

        let e = embeddingSize, s = activeCount
        // normalize(emb): x / max(‖x‖, eps)
        Self.normalizeRows(embeddings.baseAddress!, out: xHat, norms: xNorm, rows: batch, cols: e)
        let xh = UnsafePointer(xHat), aw = UnsafePointer(activeWeight)
        // ‖W_c‖ of the active rows, then cos = x̂ · W_cᵀ / max(‖W_c‖, eps)
        Self.runBlocks(pool, s) { lo, hi in
            for c in lo..<hi { self.wNorm[c] = Self.norm(aw + c * e, e) }
            BLAS.gemm(m: batch, n: hi - lo, k: e, a: xh, lda: e, b: aw + lo * e, ldb: e, transposeB: true,
                      c: self.rawCos + lo, ldc: s)
            for b in 0..<batch {
                let row = self.rawCos + b * s
                for c in lo..<hi { row[c] /= max(self.wNorm[c], Self.normalizeEps) }
            }
        }
        // margin → softmax → nll, per row
        let config = margin
        if let communicator {
            try distributedSoftmax(communicator, batch: batch, pool: pool)
            loss = WeightedCrossEntropy.loss(nll: nll, weights: weightsCopy, batch: batch)
            phase = .forwarded
            return loss
        }
        Self.parallel(pool, batch) { r in
            for b in r {
                let row = self.scratch + b * s
                MarginSoftmax.forwardRow(config, raw: self.rawCos + b * s, out: row, classes: s, label: Int(self.labelsActive[b]))
                self.nll[b] = WeightedCrossEntropy.forwardRow(row, classes: s, label: Int(self.labelsActive[b]))
            }
        }
        loss = WeightedCrossEntropy.loss(nll: nll, weights: weightsCopy, batch: batch)
        phase = .forwarded
        return loss
    }

    /// Convenience for tests and tools (allocates): labels as `Int`.
    @discardableResult
    public func forward(embeddings: [Float], labels: [Int], sampleWeights: [Float]? = nil, pool: WorkerPool? = nil) throws -> Double {
        for y in labels { try require(y >= 0 && y < totalClasses, "partial fc: label \(y) is outside 0..<\(totalClasses)") }
        let l32 = labels.map { Int32($0) }
        return try embeddings.withUnsafeBufferPointer { e in
            try l32.withUnsafeBufferPointer { l in
                if let sampleWeights {
                    return try sampleWeights.withUnsafeBufferPointer { w in
                        try forward(embeddings: e, labels: l, batch: labels.count, sampleWeights: w, pool: pool)
                    }
                }
                return try forward(embeddings: e, labels: l, batch: labels.count, sampleWeights: nil, pool: pool)
            }
        }
    }

    /// Partial FC sampling of the active classes for the labels in `labelsOriginal`.
    private func sample(batch: Int) {
        var positives = 0
        for b in 0..<batch {
            guard let y = localClass(labelsOriginal[b]) else { continue }
            if positiveMark[y] == 0 { positiveMark[y] = 1; positives += 1 }
        }
        var n = 0
        if numSample >= positives {
            var need = numSample - positives
            var remaining = numClasses - positives
            for c in 0..<numClasses {
                if positiveMark[c] != 0 { index[n] = Int32(c); n += 1; continue }
                if need > 0 {
                    // Algorithm S: take this negative with probability need / remaining.
                    if need >= remaining || rng.uniformDouble() * Double(remaining) < Double(need) {
                        index[n] = Int32(c); n += 1; need -= 1
                    }
                }
                remaining -= 1
            }
        } else {
            for c in 0..<numClasses where positiveMark[c] != 0 { index[n] = Int32(c); n += 1 }
        }
        for b in 0..<batch { if let y = localClass(labelsOriginal[b]) { positiveMark[y] = 0 } }
        activeCount = n
        // searchsorted(index, label); −1 for a label of another shard
        for b in 0..<batch {
            guard let local = localClass(labelsOriginal[b]) else { labelsActive[b] = -1; continue }
            let y = Int32(local)
            var lo = 0, hi = n
            while lo < hi {
                let mid = (lo + hi) / 2
                if index[mid] < y { lo = mid + 1 } else { hi = mid }
            }
            labelsActive[b] = Int32(lo)
        }
    }

    /// A global label's row in this shard, nil when another rank holds it.
    @inline(__always)
    private func localClass(_ y: Int32) -> Int? {
        let local = Int(y) - classStart
        return local >= 0 && local < numClasses ? local : nil
    }

    /// The softmax of `forward` with every row split over the ranks: each phase of
    /// `WeightedCrossEntropy.forwardRow` on the local classes, the row max and sum reduced
    /// between them, then the per-sample nll (non-zero only on the rank holding the label).
    private func distributedSoftmax(_ communicator: any Communicator, batch: Int, pool: WorkerPool?) throws {
        let s = activeCount, config = margin
        Self.parallel(pool, batch) { r in
            for b in r {
                let row = self.scratch + b * s
                MarginSoftmax.forwardRow(config, raw: self.rawCos + b * s, out: row, classes: s, label: Int(self.labelsActive[b]))
                self.rowMax[b] = WeightedCrossEntropy.rowMax(row, classes: s)
            }
        }
        try communicator.allreduceMax(UnsafeMutableBufferPointer(start: rowMax, count: batch))
        Self.parallel(pool, batch) { r in
            for b in r { self.rowSum[b] = WeightedCrossEntropy.exponentiateRow(self.scratch + b * s, classes: s, max: self.rowMax[b]) }
        }
        try communicator.allreduceSum(UnsafeMutableBufferPointer(start: rowSum, count: batch))
        Self.parallel(pool, batch) { r in
            for b in r {
                self.nll[b] = WeightedCrossEntropy.normalizeRow(self.scratch + b * s, classes: s, sum: self.rowSum[b],
                                                                label: Int(self.labelsActive[b]))
            }
        }
        try communicator.allreduceSum(UnsafeMutableBufferPointer(start: nll, count: batch))
    }

    // MARK: backward

    /// Backward of the last `forward`: writes dL/d(embeddings) `[batch × E]` (overwritten), the
    /// active rows of `gradient` (overwritten), and, when `sampleWeightGradient` is given (the
    /// paper's EHSM, weight not detached), dL/dw_b = `−log max(p_y, 1e−30) / B`. The sample
    /// weights are constants here, as in the official backward. Call once per forward.
    public func backward(embeddingGradient: UnsafeMutableBufferPointer<Float>,
                         sampleWeightGradient: UnsafeMutableBufferPointer<Float>? = nil, pool: WorkerPool? = nil) throws {
        guard phase == .forwarded else {
            throw TransFaceError(.misuse, phase == .empty ? "partial fc: backward without a forward"
                                                           : "partial fc: backward called twice for one forward")
        }
        try require(embeddingGradient.count >= batch * embeddingSize,
                    "partial fc: embedding gradient holds \(embeddingGradient.count) floats, needs \(batch)×\(embeddingSize)")
        if let sampleWeightGradient {
            try require(sampleWeightGradient.count >= batch, "partial fc: sample weight gradient holds \(sampleWeightGradient.count), needs \(batch)")
        }
        let e = embeddingSize, s = activeCount, batch = self.batch
        let config = margin
        // dL/dcos, then divided by max(‖W_c‖, eps): G' (in `scratch`)
        Self.parallel(pool, batch) { r in
            for b in r {
                let row = self.scratch + b * s
                let label = Int(self.labelsActive[b])
                WeightedCrossEntropy.backwardRow(row, classes: s, label: label, weight: self.weightsCopy[b], batch: batch)
                MarginSoftmax.backwardRow(config, raw: self.rawCos + b * s, gradient: row, classes: s, label: label)
                for c in 0..<s { row[c] /= max(self.wNorm[c], Self.normalizeEps) }
            }
        }
        phase = .backwarded
        let g = UnsafePointer(scratch), aw = UnsafePointer(activeWeight), xh = UnsafePointer(xHat)
        // dx̂ = G' · W_s, split over embedding columns; then through normalize.
        Self.runBlocks(pool, e) { lo, hi in
            BLAS.gemm(m: batch, n: hi - lo, k: s, a: g, lda: s, b: aw + lo, ldb: e, transposeB: false,
                      c: self.dxHat + lo, ldc: e)
        }
        // Sharded: every rank's classes contribute to every sample's gradient.
        try communicator?.allreduceSum(UnsafeMutableBufferPointer(start: dxHat, count: batch * e))
        Self.normalizeBackward(x: xh, norms: xNorm, gradNormalized: dxHat, out: embeddingGradient.baseAddress!, rows: batch, cols: e)
        // dW_s = through normalize of (G'ᵀ · x̂), split over classes; scattered when sampling.
        Self.runBlocks(pool, s) { lo, hi in
            BLAS.gemm(m: hi - lo, n: e, k: batch, a: g + lo, lda: s, b: xh, ldb: e, transposeB: false,
                      c: self.activeGradient + lo * e, ldc: e, transposeA: true)
            for c in lo..<hi {
                let u = self.activeGradient + c * e, w = aw + c * e
                let n = Double(self.wNorm[c])
                if n > Double(Self.normalizeEps) {
                    // u holds dŴ/‖W‖; dW = u − Ŵ (Ŵ · u)
                    var dot = 0.0
                    for i in 0..<e { dot += Double(w[i]) * Double(u[i]) }
                    let f = Float(dot / (n * n))
                    for i in 0..<e { u[i] -= w[i] * f }
                }
                if self.sampling {
                    (self.gradient.base + Int(self.index[c]) * e).update(from: u, count: e)
                }
            }
        }
        if let sampleWeightGradient {
            WeightedCrossEntropy.weightGradient(nll: nll, batch: batch, into: sampleWeightGradient.baseAddress!)
        }
    }

    /// One optimizer step of the centres after `backward`: the whole tensor without sampling,
    /// only the active rows (`stepRows`) with sampling. The optimizer's group must be
    /// `ParameterGroup.single(name:count:)` of `numClasses × embeddingSize` floats.
    public func step(optimizer: any ParameterOptimizer, pool: WorkerPool? = nil) throws {
        guard phase == .backwarded else { throw TransFaceError(.misuse, "partial fc: optimizer step before backward") }
        if sampling {
            try optimizer.stepRows(UnsafeBufferPointer(start: index, count: activeCount), rowLength: embeddingSize,
                                   parameters: weight.all, gradients: UnsafeBufferPointer(gradient.all), pool: pool)
        } else {
            try optimizer.step(parameters: weight.all, gradients: UnsafeBufferPointer(gradient.all), pool: pool)
        }
    }

    // MARK: outputs of the last forward

    /// Active class ids (sorted) of the last forward; `0..<numClasses` without sampling.
    public var sampledClasses: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(start: index, count: activeCount) }
    /// Labels of the last forward remapped to indices into `sampledClasses`.
    public var activeLabels: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(start: labelsActive, count: batch) }
    /// Per-sample `−log max(p_y, 1e−30)` of the last forward (unweighted).
    public var perSampleNLL: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: nll, count: batch) }
    /// The sample weights used by the last forward.
    public var sampleWeights: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: weightsCopy, count: batch) }
    /// Softmax probabilities `[batch × activeCount]` of the last forward (valid until `backward`).
    public var probabilities: UnsafeBufferPointer<Float>? {
        phase == .forwarded ? UnsafeBufferPointer(start: scratch, count: batch * activeCount) : nil
    }

    /// Writes the clamped cosine logits `[batch × activeCount]` of the last forward.
    public func cosLogits(into out: UnsafeMutableBufferPointer<Float>) throws {
        try checkOutput(out.count)
        for i in 0..<(batch * activeCount) { out[i] = MarginSoftmax.clampUnit(rawCos[i]) }
    }

    /// Writes the margin logits `[batch × activeCount]` (times s) of the last forward (recomputed).
    public func marginLogits(into out: UnsafeMutableBufferPointer<Float>) throws {
        try checkOutput(out.count)
        for b in 0..<batch {
            MarginSoftmax.forwardRow(margin, raw: rawCos + b * activeCount, out: out.baseAddress! + b * activeCount,
                                     classes: activeCount, label: Int(labelsActive[b]))
        }
    }

    /// Allocating conveniences for tests and tools.
    public func cosLogits() throws -> [Float] {
        var out = [Float](repeating: 0, count: batch * activeCount)
        try out.withUnsafeMutableBufferPointer { try cosLogits(into: $0) }
        return out
    }

    public func marginLogits() throws -> [Float] {
        var out = [Float](repeating: 0, count: batch * activeCount)
        try out.withUnsafeMutableBufferPointer { try marginLogits(into: $0) }
        return out
    }

    private func checkOutput(_ count: Int) throws {
        guard phase != .empty else { throw TransFaceError(.misuse, "partial fc: no forward yet") }
        try require(count >= batch * activeCount, "partial fc: output holds \(count) floats, needs \(batch)×\(activeCount)")
    }

    // MARK: helpers

    @inline(__always)
    static func parallel(_ pool: WorkerPool?, _ count: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        if let pool, pool.threadCount > 1 { pool.parallelFor(count, body) } else { body(0..<count) }
    }

    /// Splits 0..<count into one contiguous block per worker (multiples of 16 where possible).
    static func runBlocks(_ pool: WorkerPool?, _ count: Int, _ body: (Int, Int) -> Void) {
        guard count > 0 else { return }
        guard let pool, pool.threadCount > 1, count >= 32 else { body(0, count); return }
        let blocks = (count + 15) / 16
        pool.run { w in
            let r = WorkerPool.split(blocks, parts: pool.threadCount, index: w)
            let lo = r.lowerBound * 16, hi = min(r.upperBound * 16, count)
            if lo < hi { body(lo, hi) }
        }
    }

    /// ‖v‖ (Double accumulation, rounded to float).
    @inline(__always)
    static func norm(_ v: UnsafePointer<Float>, _ n: Int) -> Float {
        var s = 0.0
        for i in 0..<n { s += Double(v[i]) * Double(v[i]) }
        return Float(s.squareRoot())
    }

    /// F.normalize over rows: `out = x / max(‖x‖, eps)`, norms (unclamped) into `norms`.
    static func normalizeRows(_ x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, norms: UnsafeMutablePointer<Float>,
                              rows: Int, cols: Int) {
        for r in 0..<rows {
            let n = norm(x + r * cols, cols)
            norms[r] = n
            let d = max(n, normalizeEps)
            for i in 0..<cols { out[r * cols + i] = x[r * cols + i] / d }
        }
    }

    /// Backward of F.normalize over rows: `dx = (dx̂ − x̂ (x̂ · dx̂)) / ‖x‖` when ‖x‖ > eps, else
    /// `dx̂ / eps` (the clamp_min has no gradient there).
    static func normalizeBackward(x xHat: UnsafePointer<Float>, norms: UnsafePointer<Float>, gradNormalized g: UnsafePointer<Float>,
                                  out: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
        for r in 0..<rows {
            let xh = xHat + r * cols, gr = g + r * cols, o = out + r * cols
            let n = norms[r]
            if n > normalizeEps {
                var dot = 0.0
                for i in 0..<cols { dot += Double(xh[i]) * Double(gr[i]) }
                let d = Float(dot)
                for i in 0..<cols { o[i] = (gr[i] - xh[i] * d) / n }
            } else {
                for i in 0..<cols { o[i] = gr[i] / normalizeEps }
            }
        }
    }
}
