import TFConvert
import TFCore
import TFData
import TFDistributed
import TFModel

/// Importing a run of the official TransFace `train.py`: its `checkpoint_gpu_{rank}.pt` files
/// (one per rank of the run) become a trainer that continues the run.
///
/// What maps to what:
/// - `state_dict_backbone` → the model's tensors (identical on every rank under DDP: checked);
///   `num_batches_tracked` is dropped (the trainer keeps no such counter).
/// - `state_dict_softmax_fc.weight` of rank r → classes `[start_r, start_r + num_local_r)` of
///   `partial_fc.weight`, with `num_local_r = C/W + (r < C%W)` and `start_r = (C/W)·r + min(r, C%W)`
///   (`partial_fc_exp.py`), concatenated in rank order.
/// - `state_optimizer`: torch numbers the parameters of its `param_groups` in order — group 0 is
///   `backbone.parameters()` (module order, which is `state_dict_backbone`'s order without the
///   BatchNorm buffers), group 1 the rank's centres — so `state[i]` belongs to the i-th of them.
///   AdamW's `exp_avg`/`exp_avg_sq` and SGD's `momentum_buffer` become `optimizer.<moment>.<name>`;
///   a parameter without state (never stepped, e.g. `mask_token` without masking) has zero
///   moments, as in torch. The official sampled Partial FC (`sample_rate < 1`) keeps its centres'
///   moments in buffers that its `state_dict` does not save (its resume zeroes them); then the
///   centres' moments start at zero too, and a note says so.
/// - `global_step` → the optimizer-step counter (bias corrections) and the schedule's position:
///   after n steps the official PolyScheduler has `last_epoch = n − 1`, as ours after n steps.
///   Differences from the configuration (schedule, hyper-parameters, torch's own step counts)
///   are reported as notes; sizes that differ are refused, naming the tensor.
/// Not imported: the data loader's position (the official sampler reshuffles by epoch; a resumed
/// trainer's `samplerState` is empty) and random streams (torch's are not ours).
extension Trainer {
    /// A trainer continuing the official run saved in `paths` (checkpoint files, or folders holding
    /// `checkpoint_gpu_*.pt`), configured by `config` (its sizes must be the run's), and notes on
    /// what could not be carried over exactly.
    public static func importOfficial(_ paths: [String], config: TrainerConfig) throws -> (trainer: Trainer, notes: [String]) {
        let files = try officialCheckpointFiles(paths)
        var ranks: [OfficialCheckpointFile] = []
        for f in files { ranks.append(try OfficialCheckpointFile(path: f)) }
        var notes: [String] = []
        let c = config.model, world = ranks.count, classes = config.numClasses, e = c.embeddingSize
        let first = ranks[0]
        for r in ranks.dropFirst() where r.globalStep != first.globalStep || r.epoch != first.epoch {
            throw TransFaceError.format("'\(r.path)' is at epoch \(r.epoch), step \(r.globalStep); '\(first.path)' at epoch \(first.epoch), step \(first.globalStep): not one run")
        }
        let t = try Trainer(config: config)
        let layout = t.layout

        // Backbone.
        let byName = try backboneTensors(first, layout: layout)
        for entry in layout.entries {
            let values = try byName[entry.name]!.floats("\(first.path): \(entry.name)")
            for r in ranks.dropFirst() {
                guard let other = r.backbone.first(where: { $0.name == entry.name }), try other.tensor.floats(entry.name) == values else {
                    throw TransFaceError.format("'\(r.path)': backbone tensor \(entry.name) differs from rank 0's (data-parallel ranks hold one backbone)")
                }
            }
            try t.setTensor(entry.name, values)
        }

        // Centres, rank by rank.
        try require(world <= classes, "\(world) ranks for \(classes) classes")
        let shards = (0..<world).map { ClassShard(total: classes, rank: $0, size: world).count }
        var centres: [Float] = []
        centres.reserveCapacity(classes * e)
        for (r, file) in ranks.enumerated() {
            try requireShape(file.centres, [shards[r], e], "'\(file.path)': state_dict_softmax_fc.weight (rank \(r) of \(world), \(classes) classes)")
            centres += try file.centres.floats("\(file.path): state_dict_softmax_fc.weight")
        }
        try t.setTensor(PartialFC.tensorName, centres)

        // Optimizer moments.
        let moments = config.optimizer == .adamw ? ["exp_avg", "exp_avg_sq"] : ["momentum_buffer"]
        let other = config.optimizer == .adamw ? "momentum_buffer" : "exp_avg"
        let parameterNames = first.backbone.map(\.name).filter { layout[$0]?.trainable == true }
        var torchSteps = Set<Double>()
        var centreMoments = moments.map { _ in [Float]() }, centresZeroed = false
        for (r, file) in ranks.enumerated() {
            guard file.paramGroups.count == 2, file.paramGroups[1].params.count == 1,
                  file.paramGroups[0].params.count == parameterNames.count else {
                throw TransFaceError.format("'\(file.path)': the optimizer has param groups of \(file.paramGroups.map { String($0.params.count) }.joined(separator: ", ")) parameters; train.py's has two: the backbone's \(parameterNames.count), then the centres")
            }
            if file.state.values.contains(where: { $0[other] != nil }) {
                throw TransFaceError.format("'\(file.path)': the optimizer state holds '\(other)': the run used another optimizer than the configured \(config.optimizer.rawValue)")
            }
            if r == 0 {
                for (index, name) in zip(file.paramGroups[0].params, parameterNames) {
                    guard let s = file.state[index] else { continue }
                    guard t.stateTensors().contains(where: { $0.0 == "optimizer.\(moments[0]).\(name)" }) else {
                        notes.append("optimizer state of \(name) ignored: the configuration does not train it")
                        continue
                    }
                    if case .tensor(let step)? = s["step"], let v = try step.floats("step of \(name)").first { torchSteps.insert(Double(v)) }
                    if case .number(let v)? = s["step"] { torchSteps.insert(v) }
                    for m in moments {
                        let values = try momentValues(s[m], shape: layout[name]!.shape, what: "'\(file.path)': state_optimizer.state[\(index)].\(m) (\(name))")
                        try t.setTensor("optimizer.\(m).\(name)", values)
                    }
                }
            }
            let s = file.state[file.paramGroups[1].params[0]]
            let what = "'\(file.path)': state_optimizer.state[\(file.paramGroups[1].params[0])]"
            if let s, case .tensor(let sample)? = s[moments[0]], sample.shape != [shards[r], e], config.sampleRate < 1 {
                centresZeroed = true  // the official sampled Partial FC: moments of the active rows only
            } else if !centresZeroed {
                for (i, m) in moments.enumerated() {
                    centreMoments[i] += s == nil ? [Float](repeating: 0, count: shards[r] * e)
                        : try momentValues(s![m], shape: [shards[r], e], what: "\(what).\(m) (centres of rank \(r))")
                }
            }
        }
        for (i, m) in moments.enumerated() {
            try t.setTensor("optimizer.\(m).\(PartialFC.tensorName)", centresZeroed ? [Float](repeating: 0, count: classes * e) : centreMoments[i])
        }
        if centresZeroed {
            notes.append("the centres' optimizer moments start at zero: the official sampled Partial FC does not save them (its own resume zeroes them too)")
        }

        // Position and schedule.
        let step = first.globalStep
        try t.restorePosition(step: step, microStep: step * config.gradientAccumulation)
        if !torchSteps.isEmpty && torchSteps != [Double(step)] {
            notes.append("torch's optimizer had taken \(torchSteps.sorted().map { String(Int($0)) }.joined(separator: "/")) steps (the fp16 loss scaler skips steps), the run continues from global_step \(step)")
        }
        notes += scheduleNotes(first, config: config, step: step)
        notes += hyperParameterNotes(first.paramGroups[0].numbers, config: config)
        notes.append("imported \(world) rank(s) of '\(first.path)' at epoch \(first.epoch), step \(step); the data loader starts afresh")
        return (t, notes)
    }

    /// The checkpoint files: files as given, folders' `checkpoint_gpu_<r>.pt`; ranks from the
    /// names must be 0..<W, each once (files in the order given when no name carries a rank).
    static func officialCheckpointFiles(_ paths: [String]) throws -> [String] {
        try require(!paths.isEmpty, "no checkpoint given")
        var files: [String] = []
        for p in paths {
            if DataFiles.isDirectory(p) {
                let found = try DataFiles.list(p).filter { rank(of: $0) != nil }.map { p + "/" + $0 }
                guard !found.isEmpty else { throw TransFaceError.notFound("'\(p)' holds no checkpoint_gpu_<rank>.pt") }
                files += found
            } else {
                guard DataFiles.isFile(p) else { throw TransFaceError.notFound("\(p): no such file") }
                files.append(p)
            }
        }
        let ranks = files.map { rank(of: String($0.split(separator: "/").last ?? "")) }
        if ranks.allSatisfy({ $0 == nil }) && files.count == 1 { return files }
        guard ranks.allSatisfy({ $0 != nil }) else {
            throw TransFaceError.invalidArgument("with several checkpoints every file must be named checkpoint_gpu_<rank>.pt (the rank orders the class shards)")
        }
        let sorted = zip(ranks.map { $0! }, files).sorted { $0.0 < $1.0 }
        guard sorted.map(\.0) == Array(0..<files.count) else {
            throw TransFaceError.invalidArgument("checkpoints of ranks \(sorted.map { String($0.0) }.joined(separator: ", ")) given; a run of \(files.count) ranks needs each of 0...\(files.count - 1) once")
        }
        return sorted.map(\.1)
    }

    static func rank(of name: String) -> Int? {
        guard name.hasPrefix("checkpoint_gpu_"), name.hasSuffix(".pt") else { return nil }
        let digits = name.dropFirst("checkpoint_gpu_".count).dropLast(3)
        guard !digits.isEmpty, digits.count < 7, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return Int(digits)
    }

    /// The backbone tensors by name, checked against the layout: every tensor present with its
    /// shape, nothing unknown (BatchNorm's `num_batches_tracked` aside).
    static func backboneTensors(_ file: OfficialCheckpointFile, layout: ParameterLayout) throws -> [String: SourceTensor] {
        var byName: [String: SourceTensor] = [:]
        for (name, t) in file.backbone where !name.hasSuffix(".num_batches_tracked") {
            guard layout[name] != nil else {
                throw TransFaceError.format("'\(file.path)': state_dict_backbone has \(name), which the configured architecture lacks")
            }
            byName[name] = t
        }
        for entry in layout.entries {
            guard let t = byName[entry.name] else {
                throw TransFaceError.format("'\(file.path)': state_dict_backbone lacks \(entry.name)")
            }
            try requireShape(t, entry.shape, "'\(file.path)': state_dict_backbone.\(entry.name)")
        }
        return byName
    }

    static func requireShape(_ t: SourceTensor, _ shape: [Int], _ what: String) throws {
        guard t.shape == shape else {
            throw TransFaceError.format("\(what) has shape \(t.shape), the configuration needs \(shape)")
        }
    }

    /// A moment tensor's values (nil, torch's None: zeros).
    static func momentValues(_ v: OfficialCheckpointFile.StateValue?, shape: [Int], what: String) throws -> [Float] {
        switch v {
        case .tensor(let t)?:
            try requireShape(t, shape, what)
            return try t.floats(what)
        case .none?, nil:
            return [Float](repeating: 0, count: shape.reduce(1, *))
        case .number?:
            throw TransFaceError.format("\(what) is a number, not a tensor")
        }
    }

    static func scheduleNotes(_ file: OfficialCheckpointFile, config: TrainerConfig, step: Int) -> [String] {
        var notes: [String] = []
        let s = file.scheduler
        if let last = s["last_epoch"], Int(last) != step - 1 {
            notes.append("the scheduler's last_epoch is \(Int(last)), step \(step) implies \(step - 1): the schedule continues from the step")
        }
        for (key, ours) in [("base_lr", config.learningRate), ("warmup_steps", Double(config.warmupSteps)), ("max_steps", Double(config.maxSteps))] {
            if let theirs = s[key], theirs != ours { notes.append("the run's \(key) was \(theirs), the configuration has \(ours)") }
        }
        return notes
    }

    static func hyperParameterNotes(_ group: [String: Double], config: TrainerConfig) -> [String] {
        var pairs = [("weight_decay", config.weightDecay)]
        if config.optimizer == .adamw {
            pairs += [("betas.0", config.betas.0), ("betas.1", config.betas.1), ("eps", config.eps)]
        } else {
            pairs.append(("momentum", config.momentum))
        }
        return pairs.compactMap { key, ours in
            guard let theirs = group[key], theirs != ours else { return nil }
            return "the run's optimizer \(key) was \(theirs), the configuration has \(ours)"
        }
    }
}
