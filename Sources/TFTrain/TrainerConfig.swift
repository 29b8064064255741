import TFCore
import TFModel

/// Everything a training run is made of, read from JSON (`TrainerConfig.parse`). Every key is
/// optional except `num_classes`; an unknown key is an error naming it. Defaults are the
/// official TransFace recipe (`arcface_torch` configs with the TransFace changes).
///
/// ```json
/// { "arch": "vit_t",                  // a preset, or "custom" with "model": {embed_dim, depth,
///                                      //   num_heads, mlp_hidden_dim, img_size, patch_size}
///   "embedding_size": 512, "mask_ratio": 0.1, "drop_path_rate": 0.1,   // preset's by default
///   "se_gate": true,                   // false: plain ViT without the SE module (needs DPAP off)
///   "num_classes": 1000, "sample_rate": 1.0,
///   "margin": {"s": 64, "m1": 1.0, "m2": 0.5, "m3": 0.0, "interclass_filtering_threshold": 0},
///   "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 0.1, "betas": [0.9, 0.999],
///                 "eps": 1e-8, "momentum": 0.9, "decay": "all" | "exempt_norms_biases_tokens"},
///   "schedule": {"warmup_steps": 0, "max_steps": 1000},
///   "clip_grad_norm": 5.0,             // null: no clipping
///   "dpap": {"enabled": true, "top_k": 7, "probability": 0.2, "alpha": 1.0},
///   "ehsm": {"enabled": true, "mode": "official" | "paper", "entropy": "std" | "gaussian",
///            "gamma": 1.0, "top_k": null},
///   "batch_size": 32, "gradient_accumulation": 1, "seed": 2048, "threads": 1,
///   "non_finite": "refuse" | "skip" | "reduce_lr",
///   "non_finite_lr_factor": 0.5,      // reduce_lr only
///   "distributed": {"backend": "mpi", "checksum_every": 100} }   // absent or null: one process
/// ```
public struct TrainerConfig {
    public var model: ViTConfig
    public var numClasses: Int
    public var sampleRate: Double
    public var margin: MarginConfig
    public enum OptimizerKind: String, Sendable { case adamw, sgd }
    public var optimizer: OptimizerKind
    public var learningRate: Double
    public var weightDecay: Double
    public var betas: (Double, Double)
    public var eps: Double
    public var momentum: Double
    public var decay: WeightDecayPolicy
    public var warmupSteps: Int
    public var maxSteps: Int
    public var clipGradNorm: Double?
    public var dpap: DPAPConfig?
    public var ehsm: EHSMConfig?
    public var batchSize: Int
    public var gradientAccumulation: Int
    public var seed: UInt64
    public var threads: Int
    /// What a step whose loss or gradients are not finite does: `refuse` throws, `skip` reports
    /// the batch skipped, `reduce_lr` (`reduceLearningRate`) skips it too and multiplies the
    /// learning rate by `non_finite_lr_factor` (in (0, 1), default 0.5) for the rest of the run:
    /// every later step uses the schedule's rate times the product of the factors so far
    /// (`Trainer.learningRateScale`, saved in checkpoints, so a resumed run continues bit for bit).
    /// Either way weights, statistics and RNG streams are as before the batch, and a partly
    /// accumulated gradient (gradient accumulation) is dropped.
    public enum NonFinitePolicy: Equatable, Sendable { case refuse, skip, reduceLearningRate(factor: Double) }
    public var nonFinite: NonFinitePolicy
    /// Data-parallel training over the ranks of an MPI job (`batch_size` is then per rank); nil: one process.
    public var distributed: DistributedConfig? = nil
    /// The JSON text this configuration was read from (stored in checkpoints).
    public let json: String

    /// Reads a configuration; throws `invalidArgument` naming the key at fault.
    public static func parse(_ text: String) throws -> TrainerConfig {
        var root = try JSONObjectReader(try JSONValue.parse(text), path: "config")
        let arch = try root.string("arch", default: "vit_t")
        var model: ViTConfig
        if arch == "custom" {
            guard var m = try root.object("model") else { throw TransFaceError.invalidArgument("config.model is required when arch is \"custom\"") }
            let dim = try m.integer("embed_dim", in: 1...65536)
            model = ViTConfig(arch: "custom", imgSize: try m.integer("img_size", default: 112, in: 1...4096),
                              patchSize: try m.integer("patch_size", default: 9, in: 1...4096), embedDim: dim,
                              depth: try m.integer("depth", in: 1...1024), numHeads: try m.integer("num_heads", in: 1...65536),
                              mlpHiddenDim: try m.integer("mlp_hidden_dim", default: 4 * dim, in: 1...(1 << 20)))
            try m.finish()
        } else {
            if root.value("model") != nil { throw TransFaceError.invalidArgument("config.model is only for arch \"custom\"") }
            model = try ViTConfig.preset(arch)
        }
        model.embeddingSize = try root.integer("embedding_size", default: 512, in: 1...65536)
        model.maskRatio = Float(try root.number("mask_ratio", default: Double(model.maskRatio), in: 0...0.99))
        model.dropPathRate = Float(try root.number("drop_path_rate", default: Double(model.dropPathRate), in: 0...0.99))
        model.seGate = try root.bool("se_gate", default: true)
        try model.validate()

        let numClasses = try root.integer("num_classes", in: 1...Int(Int32.max))
        let sampleRate = try root.number("sample_rate", default: 1, in: 1e-6...1)
        var margin = try MarginConfig.arcFace()
        if var m = try root.object("margin") {
            margin = try .official(m1: Float(try m.number("m1", default: 1)), m2: Float(try m.number("m2", default: 0.5)),
                                   m3: Float(try m.number("m3", default: 0)), scale: Float(try m.number("s", default: 64, in: 1e-3...1e4)),
                                   interclassFilteringThreshold: Float(try m.number("interclass_filtering_threshold", default: 0, in: 0...1)))
            try m.finish()
        }
        var optimizer = OptimizerKind.adamw
        var lr = 1e-3, wd = 0.1, betas = (0.9, 0.999), eps = 1e-8, momentum = 0.9, decay = WeightDecayPolicy.everyTensor
        if var o = try root.object("optimizer") {
            optimizer = OptimizerKind(rawValue: try o.string("name", default: "adamw", oneOf: ["adamw", "sgd"]))!
            lr = try o.number("lr", default: optimizer == .adamw ? 1e-3 : 0.1, in: 0...10)
            wd = try o.number("weight_decay", default: optimizer == .adamw ? 0.1 : 5e-4, in: 0...10)
            if let b = o.value("betas") {
                guard case .array(let items) = b, items.count == 2, case .number(let b1) = items[0], case .number(let b2) = items[1],
                      (0..<1).contains(b1), (0..<1).contains(b2) else {
                    throw TransFaceError.invalidArgument("config.optimizer.betas must be two numbers in [0, 1)")
                }
                betas = (b1, b2)
            }
            eps = try o.number("eps", default: 1e-8, in: 0...1)
            momentum = try o.number("momentum", default: 0.9, in: 0...0.999999)
            let d = try o.string("decay", default: "all", oneOf: ["all", "exempt_norms_biases_tokens"])
            decay = d == "all" ? .everyTensor : .exemptNormsBiasesAndTokens
            try o.finish()
        }
        var warmup = 0, maxSteps = 1000
        if var s = try root.object("schedule") {
            warmup = try s.integer("warmup_steps", default: 0, in: 0...Int(Int32.max))
            maxSteps = try s.integer("max_steps", default: 1000, in: 1...Int(Int32.max))
            try s.finish()
        }
        guard maxSteps > warmup else {
            throw TransFaceError.invalidArgument("config.schedule.max_steps (\(maxSteps)) must exceed warmup_steps (\(warmup))")
        }
        // Absent: the official 5; null: no clipping.
        let clipDisabled = root.has("clip_grad_norm") && root.value("clip_grad_norm") == nil
        let clip: Double? = clipDisabled ? nil : try root.number("clip_grad_norm", default: 5, in: 1e-12...1e12)

        var dpap: DPAPConfig? = .official
        if var d = try root.object("dpap") {
            if try d.bool("enabled", default: true) {
                dpap = DPAPConfig(topK: try d.integer("top_k", default: 7, in: 1...model.numPatches),
                                  probability: try d.number("probability", default: 0.2, in: 0...1),
                                  alpha: try d.number("alpha", default: 1, in: 0...1))
                dpap!.imageSize = model.imgSize
                dpap!.patchSize = model.patchSize
                try dpap!.validate()
            } else {
                dpap = nil
                _ = d.value("top_k"); _ = d.value("probability"); _ = d.value("alpha")
            }
            try d.finish()
        } else if model.imgSize != 112 || model.patchSize != 9 {
            dpap!.imageSize = model.imgSize
            dpap!.patchSize = model.patchSize
        }
        var ehsm: EHSMConfig? = .official
        if var h = try root.object("ehsm") {
            let enabled = try h.bool("enabled", default: true)
            let mode = try h.string("mode", default: "official", oneOf: ["official", "paper"])
            let entropy = try h.string("entropy", default: "std", oneOf: ["std", "gaussian"])
            let gamma = try h.number("gamma", default: 1, in: 0...1e3)
            let topK = h.value("top_k") == nil ? nil : try h.integer("top_k", in: 1...model.numPatches)
            try h.finish()
            ehsm = enabled ? EHSMConfig(entropy: entropy == "std" ? .patchStd : .gaussianBound, gamma: Float(gamma),
                                        topK: topK, mode: mode == "official" ? .official : .paper) : nil
        }
        let batchSize = try root.integer("batch_size", default: 32, in: 2...65536)
        let accumulation = try root.integer("gradient_accumulation", default: 1, in: 1...1024)
        if accumulation > 1 && sampleRate < 1 {
            throw TransFaceError.invalidArgument("config: gradient_accumulation > 1 needs sample_rate 1 (each micro-batch samples its own centres)")
        }
        let seed = UInt64(try root.number("seed", default: 2048, in: 0...9.007199254740992e15))
        let threads = try root.integer("threads", default: 1, in: 1...256)
        var nonFinite = NonFinitePolicy.refuse
        switch try root.string("non_finite", default: "refuse", oneOf: ["refuse", "skip", "reduce_lr"]) {
        case "skip": nonFinite = .skip
        case "reduce_lr":
            let factor = try root.number("non_finite_lr_factor", default: 0.5, in: 0...1)
            guard factor > 0 && factor < 1 else {
                throw TransFaceError.invalidArgument("config.non_finite_lr_factor = \(factor) must be strictly between 0 and 1")
            }
            nonFinite = .reduceLearningRate(factor: factor)
        default: break
        }
        if root.has("non_finite_lr_factor") && (nonFinite == .refuse || nonFinite == .skip) {
            throw TransFaceError.invalidArgument("config.non_finite_lr_factor is only for \"non_finite\": \"reduce_lr\"")
        }
        var distributed: DistributedConfig?
        if var d = try root.object("distributed") {
            _ = try d.string("backend", default: "mpi", oneOf: ["mpi"])
            distributed = DistributedConfig(checksumEvery: try d.integer("checksum_every", default: 100, in: 0...Int(Int32.max)))
            try d.finish()
        }
        try root.finish()
        if dpap != nil && !model.seGate {
            throw TransFaceError.invalidArgument("config: DPAP ranks patches by the SE module's weights; with \"se_gate\": false set \"dpap\": {\"enabled\": false}")
        }
        return TrainerConfig(model: model, numClasses: numClasses, sampleRate: sampleRate, margin: margin, optimizer: optimizer,
                             learningRate: lr, weightDecay: wd, betas: betas, eps: eps, momentum: momentum, decay: decay,
                             warmupSteps: warmup, maxSteps: maxSteps, clipGradNorm: clip, dpap: dpap, ehsm: ehsm,
                             batchSize: batchSize, gradientAccumulation: accumulation, seed: seed, threads: threads,
                             nonFinite: nonFinite, distributed: distributed, json: text)
    }
}

extension TrainerConfig: Equatable {
    /// The same training: every setting equal (the source text `json` is not compared).
    public static func == (a: TrainerConfig, b: TrainerConfig) -> Bool {
        a.model == b.model && a.numClasses == b.numClasses && a.sampleRate == b.sampleRate && a.margin == b.margin
            && a.optimizer == b.optimizer && a.learningRate == b.learningRate && a.weightDecay == b.weightDecay
            && a.betas == b.betas && a.eps == b.eps && a.momentum == b.momentum && a.decay == b.decay
            && a.warmupSteps == b.warmupSteps && a.maxSteps == b.maxSteps && a.clipGradNorm == b.clipGradNorm
            && a.dpap == b.dpap && a.ehsm == b.ehsm && a.batchSize == b.batchSize
            && a.gradientAccumulation == b.gradientAccumulation && a.seed == b.seed && a.threads == b.threads
            && a.nonFinite == b.nonFinite && a.distributed == b.distributed
    }
}

/// The `"distributed"` block: the backend is Open MPI (loaded at run time, `MPICommunicator`).
public struct DistributedConfig: Equatable, Sendable {
    /// Every this many optimizer steps the ranks compare a checksum of the weights and stop with
    /// an error when they differ (0: never).
    public var checksumEvery: Int

    public init(checksumEvery: Int = 100) { self.checksumEvery = checksumEvery }
}
