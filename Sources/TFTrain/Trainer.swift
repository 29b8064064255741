import TFCore
import TFDistributed
import TFModel


/// One TransFace training run: parameters, gradients and optimizer moments in slabs laid out
/// by the model's table, class centres (Partial FC), and every random stream, seeded.
/// `step` runs the official iteration: a train-mode pass without gradient ranks patches by SE
/// weight, DPAP mixes amplitude spectra, the second pass computes the EHSM-weighted margin
/// loss, then backward, clipping of the backbone and one optimizer step. One thread at a time.
///
/// Distributed (a `communicator`; see Trainer+Distributed.swift): data parallel over the ranks,
/// each rank's `batchSize` images per step, Partial FC sharded by class.
public final class Trainer {
    public let config: TrainerConfig
    public let layout: ParameterLayout
    public let preprocess: Preprocess
    /// `preprocess` as DPAP's float32 chains use it (both passes normalise alike).
    private let normalization: PixelNormalization
    public let parameters: FloatSlab
    public let gradients: FloatSlab
    public let partialFC: PartialFC
    public let backboneOptimizer: any ParameterOptimizer
    public let centreOptimizer: any ParameterOptimizer
    public private(set) var scheduler: PolyScheduler
    /// Optimizer steps taken, and batches seen (they differ with gradient accumulation).
    public private(set) var step: Int = 0
    public private(set) var microStep: Int = 0
    /// Opaque position of the caller's data loader, saved in checkpoints.
    public var samplerState: [UInt8] = []
    /// The factor on the schedule's learning rate: 1, times `non_finite_lr_factor` for every
    /// batch refused for a non-finite value under `"non_finite": "reduce_lr"` (checkpointed).
    public internal(set) var learningRateScale: Double = 1

    let pool: WorkerPool
    let forward: ViTForward
    let backward: ViTBackward
    let weights: ViTWeights
    let gradientWeights: ViTWeights
    let group: ParameterGroup
    let clipper: GradientClipper
    let ehsm: EHSM?
    let dpap: DPAP?
    /// Random streams: token masking / drop path, and DPAP's (replaceable, e.g. to replay the
    /// official code's recorded draws; only the seeded source can be checkpointed).
    var noiseRNG: SeededRNG
    public var dpapRandom: any DPAPRandomSource
    private var metadata: [(key: String, value: String)]
    // Step buffers, cut from one slab allocated once.
    private let stepSlab: FloatSlab
    let embeddingGradient, sampleWeights, sampleWeightGradient, patchStdGradient: UnsafeMutableBufferPointer<Float>
    private let dpapImages, dpapInput, centreGradientSum: UnsafeMutableBufferPointer<Float>
    /// The ranks trained with (nil: one process). The gathered batch of the head: every rank's
    /// embeddings, labels and EHSM weights in rank order (empty in one process).
    public let communicator: (any Communicator)?
    let globalEmbeddings, globalSampleWeights: UnsafeMutableBufferPointer<Float>
    var globalLabels: [Int32]

    /// What one call of `step` did.
    public struct StepResult {
        public var loss: Double
        /// Loss of the no-gradient first pass (DPAP only; NaN otherwise).
        public var firstPassLoss: Double
        public var learningRate: Double
        /// Backbone gradient norm before clipping, and the clipping factor (1: not clipped).
        public var gradientNorm: Double
        public var clipCoefficient: Double
        /// True when this batch completed an optimizer step (gradient accumulation).
        public var optimizerStepped: Bool
        /// True when the batch was skipped because something was not finite (policies `skip`
        /// and `reduce_lr`; with `reduce_lr`, `learningRate` is then the reduced rate of the next step).
        public var skipped: Bool
        public var imagesAugmented: Int
        /// Seconds spent in each phase.
        public var timings: [(phase: String, seconds: Double)]
    }

    /// A trainer starting from `initialModel`'s weights, or from the official initialisation
    /// (seeded by `config.seed`) when nil. The model must have the configured architecture.
    /// `communicator`: the ranks to train with; nil trains in one process unless the configuration
    /// has a `"distributed"` block, which loads Open MPI (`MPICommunicator`).
    public init(config: TrainerConfig, initialModel: TransFaceModel? = nil, communicator: (any Communicator)? = nil) throws {
        self.config = config
        let comm: (any Communicator)? = try communicator ?? (config.distributed != nil ? MPICommunicator() : nil)
        self.communicator = comm
        let rank = comm?.rank ?? 0, world = comm?.size ?? 1
        try require(config.numClasses >= world, "num_classes \(config.numClasses) is fewer than the \(world) ranks that shard them")
        // Rank 0's streams are the single-process ones; every other rank has its own.
        let rankStream = UInt64(rank) << 48
        let c = config.model
        layout = ParameterLayout(config: c)
        if let m = initialModel {
            var expected = c
            expected.arch = m.config.arch
            expected.maskRatio = m.config.maskRatio
            expected.dropPathRate = m.config.dropPathRate
            try require(m.config == expected, "the initial model's architecture (\(m.config.arch), embed \(m.config.embedDim), depth \(m.config.depth)) differs from the configured one")
            parameters = try FloatSlab(count: layout.totalCount)
            try m.copyParameters(into: parameters.base)
            preprocess = m.preprocess
            metadata = m.metadata
        } else {
            let builder = try ModelBuilder(config: c)
            builder.initializeWeights(seed: config.seed)
            parameters = try builder.build().slab  // a built model is all float32
            preprocess = .official(size: c.imgSize)
            metadata = []
        }
        normalization = PixelNormalization(preprocess)
        gradients = try FloatSlab(count: layout.totalCount)
        pool = try WorkerPool(threadCount: config.threads)
        forward = try ViTForward(config: c, preprocess: preprocess, maxBatch: config.batchSize, pool: pool, keepActivations: true)
        backward = try ViTBackward(config: c, batch: config.batchSize, pool: pool)
        weights = ViTWeights(layout: layout, config: c, base: parameters.base)
        gradientWeights = ViTWeights(layout: layout, config: c, base: gradients.base)
        group = try ParameterGroup.backbone(layout: layout, config: c, decay: config.decay)
        clipper = GradientClipper(group: group)
        var centreRNG = SeededRNG(seed: config.seed, stream: 0x5046_4300)
        let shard = comm.map { ClassShard(total: config.numClasses, rank: $0.rank, size: $0.size) }
        partialFC = try PartialFC(numClasses: config.numClasses, embeddingSize: c.embeddingSize, maxBatch: world * config.batchSize,
                                  sampleRate: config.sampleRate, margin: config.margin,
                                  rng: SeededRNG(seed: config.seed, stream: 0x5046_4301 &+ rankStream), shard: shard, communicator: comm)
        // Every shard holds its rows of the one initial matrix the single process draws.
        for _ in 0..<((shard?.start ?? 0) * c.embeddingSize) { _ = centreRNG.normal() }
        partialFC.initializeCentres(rng: &centreRNG)
        let centres = try ParameterGroup.single(name: "partial_fc.weight", count: partialFC.numClasses * c.embeddingSize,
                                                decay: config.decay.decays(name: "partial_fc.weight", shape: [config.numClasses, c.embeddingSize]))
        switch config.optimizer {
        case .adamw:
            backboneOptimizer = try AdamW(group: group, learningRate: config.learningRate, betas: config.betas, eps: config.eps,
                                          weightDecay: config.weightDecay)
            centreOptimizer = try AdamW(group: centres, learningRate: config.learningRate, betas: config.betas, eps: config.eps,
                                        weightDecay: config.weightDecay)
        case .sgd:
            backboneOptimizer = try SGD(group: group, learningRate: config.learningRate, momentum: config.momentum,
                                        weightDecay: config.weightDecay)
            centreOptimizer = try SGD(group: centres, learningRate: config.learningRate, momentum: config.momentum,
                                      weightDecay: config.weightDecay)
        }
        scheduler = try PolyScheduler(baseLR: config.learningRate, maxSteps: config.maxSteps, warmupSteps: config.warmupSteps)
        ehsm = try config.ehsm.map { try EHSM(config: $0, patches: c.numPatches) }
        dpap = try config.dpap.map { try DPAP(config: $0) }
        noiseRNG = SeededRNG(seed: config.seed, stream: 0x4E4F_4953 &+ rankStream)
        dpapRandom = SeededDPAPRandom(seed: config.seed, stream: UInt64(rank))
        let b = config.batchSize, images = config.dpap == nil ? 0 : b * c.imgSize * c.imgSize * 3
        let gathered = comm == nil ? 0 : world * b
        let sizes = [world * b * c.embeddingSize, b, world * b, b * c.numPatches, images, images,
                     config.gradientAccumulation > 1 ? partialFC.numClasses * c.embeddingSize : 0,
                     gathered * c.embeddingSize, gathered]
        var plan = SlabPlanner()
        let offsets = sizes.map { plan.reserve($0) }
        let slab = try FloatSlab(count: plan.total)
        stepSlab = slab
        let v = zip(offsets, sizes).map { slab.view($0, $1) }
        (embeddingGradient, sampleWeights, sampleWeightGradient, patchStdGradient) = (v[0], v[1], v[2], v[3])
        (dpapImages, dpapInput, centreGradientSum) = (v[4], v[5], v[6])
        (globalEmbeddings, globalSampleWeights) = (v[7], v[8])
        globalLabels = [Int32](repeating: 0, count: gathered)
    }

    /// Moves the step counters (optimizers, schedule) to a saved position.
    func restorePosition(step: Int, microStep: Int) throws {
        try require(step >= 0 && microStep >= step, "invalid saved position (step \(step), batch \(microStep))")
        self.step = step
        self.microStep = microStep
        backboneOptimizer.stepCount = step
        centreOptimizer.stepCount = step
        scheduler = try PolyScheduler(baseLR: config.learningRate, maxSteps: config.maxSteps, warmupSteps: config.warmupSteps)
        for _ in 0..<step { scheduler.step() }
    }

    /// The learning rate the next optimizer step uses.
    public var learningRate: Double { scheduler.lr * learningRateScale }

    /// Runs one batch: `images` are `batchSize` uint8 RGB images (img×img×3), `labels` their
    /// classes. Every `gradientAccumulation` batches the optimizer steps.
    public func step(images: UnsafePointer<UInt8>, labels: [Int32]) throws -> StepResult {
        let c = config.model, b = config.batchSize
        try require(labels.count == b, "a step takes exactly batch_size = \(b) labels, got \(labels.count)")
        if let bad = labels.first(where: { $0 < 0 || Int($0) >= config.numClasses }) {
            throw TransFaceError.invalidArgument("label \(bad) is outside 0..<\(config.numClasses)")
        }
        var timings: [(String, Double)] = []
        var clock = monotonicSeconds()
        func lap(_ phase: String) { let t = monotonicSeconds(); timings.append((phase, t - clock)); clock = t }

        // Everything a refused or skipped step must leave as it was.
        let runningStats = layout.entries.filter { !$0.trainable }.map { ($0, Array(parameters.view($0.offset, $0.count))) }
        let savedNoise = noiseRNG, savedCentreRNG = partialFC.rng
        let savedDPAP = dpapRandom
        let firstMicroStep = microStep % config.gradientAccumulation == 0
        if firstMicroStep {
            gradients.zero()
            partialFC.gradient.zero()
            centreGradientSum.update(repeating: 0)
        }
        func restoreAndReport(_ what: String) throws -> StepResult {
            for (e, values) in runningStats { _ = parameters.view(e.offset, e.count).update(fromContentsOf: values) }
            noiseRNG = savedNoise
            dpapRandom = savedDPAP
            partialFC.rng = savedCentreRNG
            // The accumulation window this batch belonged to starts again (weights untouched).
            microStep -= microStep % config.gradientAccumulation
            gradients.zero()
            partialFC.gradient.zero()
            centreGradientSum.update(repeating: 0)
            if case .reduceLearningRate(let factor) = config.nonFinite {
                // Floored above 0: checkpoints store a positive scale (0 there means "none").
                learningRateScale = max(learningRateScale * factor, .leastNormalMagnitude)
            }
            if config.nonFinite == .refuse {
                throw TransFaceError(.numeric, "step \(step + 1): \(what) is not finite; the step was refused and the weights are unchanged")
            }
            return StepResult(loss: .nan, firstPassLoss: .nan, learningRate: learningRate, gradientNorm: .nan, clipCoefficient: .nan,
                              optimizerStepped: false, skipped: true, imagesAugmented: 0, timings: timings)
        }

        var input = ForwardInput.rgb8(images)
        var firstPassLoss = Double.nan, augmented = 0
        if let dpap {
            // Pass 1 (train mode, no gradient): SE weights rank the patches.
            try forward.run(weights: weights, input: input, count: b, mode: .train(updateRunningStatistics: true), noise: drawNoise())
            try computeSampleWeights()
            firstPassLoss = try labels.withUnsafeBufferPointer { try headForward(labels: $0) }
            lap("first pass")
            let count = b * c.imgSize * c.imgSize * 3
            normalization.originalScale(fromRGB8: images, count: count, into: dpapImages.baseAddress!)
            let log = try dpap.apply(images: dpapImages.baseAddress!, batch: b, patchWeights: forward.patchWeights.baseAddress!,
                                     random: &dpapRandom)
            augmented = log.applied.filter { $0 }.count
            normalization.normalizedInput(from: dpapImages.baseAddress!, count: count, into: dpapInput.baseAddress!)
            input = .normalizedHWC(dpapInput.baseAddress!)
            lap("dpap")
        }
        // The pass that is trained.
        try forward.run(weights: weights, input: input, count: b, mode: .train(updateRunningStatistics: true), noise: drawNoise())
        lap("forward")
        try computeSampleWeights()
        let loss = try labels.withUnsafeBufferPointer { try headForward(labels: $0) }
        guard loss.isFinite else { return try restoreAndReport("the loss") }
        let paper = config.ehsm?.mode == .paper
        try partialFC.backward(embeddingGradient: embeddingGradient, sampleWeightGradient: paper ? sampleWeightGradient : nil, pool: pool)
        // This rank's rows of the (gathered) batch.
        let own = (communicator?.rank ?? 0) * b
        if paper, let ehsm {
            try ehsm.backward(patchStd: forward.patchStd, batch: b,
                              weightGradient: UnsafeBufferPointer(rebasing: sampleWeightGradient[own..<(own + b)]), into: patchStdGradient)
        }
        try backward.run(weights: weights, grads: gradientWeights, forward: forward, dEmbedding: embeddingGradient.baseAddress! + own * c.embeddingSize,
                         dPatchStd: paper ? UnsafePointer(patchStdGradient.baseAddress!) : nil)
        lap("backward")
        if config.gradientAccumulation > 1 {
            for i in centreGradientSum.indices { centreGradientSum[i] += partialFC.gradient.base[i] }
        }
        microStep += 1
        guard microStep % config.gradientAccumulation == 0 else {
            return StepResult(loss: loss, firstPassLoss: firstPassLoss, learningRate: learningRate, gradientNorm: .nan,
                              clipCoefficient: .nan, optimizerStepped: false, skipped: false, imagesAugmented: augmented,
                              timings: timings)
        }
        if communicator != nil {
            try allreduceGradients()
            lap("allreduce")
        }
        if config.gradientAccumulation > 1 {
            let scale = 1 / Float(config.gradientAccumulation)
            GradientClipping.scale(gradients.base, group: group, by: scale, pool: pool)
            for i in centreGradientSum.indices { partialFC.gradient.base[i] = centreGradientSum[i] * scale }
        }
        if let bad = try GradientClipping.firstNonFinite(UnsafeBufferPointer(gradients.all), group: group) {
            microStep -= 1
            return try restoreAndReport("the gradient of \(bad.tensor)")
        }
        var norm = Double.nan, coefficient = 1.0
        if let maxNorm = config.clipGradNorm {
            (norm, coefficient) = try clipper.clip(gradients: gradients.all, maxNorm: maxNorm, pool: pool)
        } else {
            norm = try clipper.totalNorm(gradients: UnsafeBufferPointer(gradients.all), pool: pool)
        }
        let lr = learningRate  // the schedule's rate (times the reduce_lr back-off, 1 unless used)
        backboneOptimizer.learningRate = lr
        centreOptimizer.learningRate = lr
        try backboneOptimizer.step(parameters: parameters.all, gradients: UnsafeBufferPointer(gradients.all), pool: pool)
        try partialFC.step(optimizer: centreOptimizer, pool: pool)
        scheduler.step()
        step += 1
        lap("optimizer")
        try verifyReplicasIfDue()
        return StepResult(loss: loss, firstPassLoss: firstPassLoss, learningRate: lr, gradientNorm: norm,
                          clipCoefficient: coefficient, optimizerStepped: true, skipped: false, imagesAugmented: augmented,
                          timings: timings)
    }

    /// EHSM sample weights from the last forward's patch std.
    private func computeSampleWeights() throws {
        guard let ehsm else { return }
        try ehsm.weights(patchStd: forward.patchStd, batch: config.batchSize, into: sampleWeights)
    }

    /// Token masking and stochastic depth for one forward pass, from the noise stream
    /// (masking: per image, the tokens with the smallest uniform noise are kept, in increasing
    /// noise order, as the official `random_masking`; drop path: `linspace(0, rate, depth)`).
    private func drawNoise() -> TrainingNoise? {
        let c = config.model, b = config.batchSize, t = c.numPatches
        var kept: [Int32]?
        let keep = Int(Double(t) * (1 - Double(c.maskRatio)))
        if c.maskRatio > 0 && keep < t {
            var out = [Int32]()
            out.reserveCapacity(b * keep)
            for _ in 0..<b {
                let noise = (0..<t).map { _ in noiseRNG.uniformFloat() }
                let order = (0..<t).sorted { noise[$0] < noise[$1] || (noise[$0] == noise[$1] && $0 < $1) }
                out += order.prefix(keep).map(Int32.init)
            }
            kept = out
        }
        var scales: [Float]?
        if c.dropPathRate > 0 {
            var s = [Float]()
            s.reserveCapacity(c.depth * 2 * b)
            for i in 0..<c.depth {
                let rate = c.depth > 1 ? Double(c.dropPathRate) * Double(i) / Double(c.depth - 1) : Double(c.dropPathRate)
                let keepProb = 1 - rate
                for _ in 0..<(2 * b) {
                    s.append(rate == 0 ? 1 : (noiseRNG.uniformDouble() < keepProb ? Float(1 / keepProb) : 0))
                }
            }
            scales = s
        }
        return kept == nil && scales == nil ? nil : TrainingNoise(keptTokens: kept, keep: keep, branchScales: scales)
    }

    // MARK: inspection and export

    /// A copy of a parameter, gradient or optimizer moment by its official name; moments are
    /// named `optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<name>`; the class centres are
    /// `partial_fc.weight`. Sharded by class (distributed), the centres, their gradient and
    /// moments are this rank's rows (`partialFC.classStart` onwards).
    public func tensor(_ name: String) throws -> [Float] {
        if name == "partial_fc.weight" { return Array(partialFC.weight.all) }
        if name == "gradient.partial_fc.weight" { return Array(partialFC.gradient.all) }
        if name.hasPrefix("gradient.") {
            guard let e = layout[String(name.dropFirst("gradient.".count))] else {
                throw TransFaceError.notFound("no training tensor '\(name)'")
            }
            return Array(gradients.view(e.offset, e.count))
        }
        if name.hasPrefix("optimizer.") {
            guard let (_, slab, offset, count) = stateTensors().first(where: { $0.0 == name }) else {
                throw TransFaceError.notFound("no training tensor '\(name)'")
            }
            return Array(slab.view(offset, count))
        }
        let e = try layout.entry(name)
        return Array(parameters.view(e.offset, e.count))
    }

    /// The current model, for inference (BatchNorm running statistics included).
    public func exportModel(metadata extra: [(key: String, value: String)] = []) throws -> TransFaceModel {
        let copy = try FloatSlab(count: parameters.count)
        copy.base.update(from: parameters.base, count: parameters.count)
        var meta = metadata.filter { m in !extra.contains { $0.key == m.key } } + extra
        meta.removeAll { $0.key == "training_step" }
        meta.append(("training_step", String(step)))
        return try TransFaceModel(config: config.model, preprocess: preprocess, metadata: meta, parameters: copy)
    }

    /// Optimizer moments as (name, slab, offset, count), in a fixed order (checkpoints).
    func stateTensors() -> [(String, FloatSlab, Int, Int)] {
        var out: [(String, FloatSlab, Int, Int)] = []
        func add(_ moment: String, _ slab: FloatSlab, _ g: ParameterGroup) {
            for t in g.tensors { out.append(("optimizer.\(moment).\(t.name)", slab, t.offset, t.count)) }
        }
        for opt in [backboneOptimizer, centreOptimizer] {
            if let a = opt as? AdamW {
                add("exp_avg", a.expAvg, a.group)
                add("exp_avg_sq", a.expAvgSq, a.group)
            } else if let s = opt as? SGD {
                add("momentum_buffer", s.momentumBuffer, s.group)
            }
        }
        return out
    }
}
