import TFCore
import TFDistributed
import TFModel

/// Training checkpoints: the model's tensors, the class centres, the optimizer moments and the
/// trainer's position (configuration, step, every RNG stream, the data loader's opaque state)
/// in a `TensorContainer` of kind `.checkpoint`, written atomically. Resuming continues
/// bit for bit (with the same thread count).
extension Trainer {
    /// Saves at an optimizer-step boundary (not in the middle of gradient accumulation). Over
    /// several ranks every rank calls it at the same step: each writes its shard, rank 0 the
    /// manifest `path` last (DistributedCheckpoint.swift).
    public func saveCheckpoint(to path: String) throws {
        if let comm = communicator, comm.size > 1 { return try saveShardedCheckpoint(to: path, communicator: comm) }
        try writeCheckpointFile(to: path)
    }

    /// One checkpoint file: this trainer's tensors (its own class rows when sharded).
    func writeCheckpointFile(to path: String, metadata: [(key: String, value: String)] = []) throws {
        guard microStep % config.gradientAccumulation == 0 else {
            throw TransFaceError(.misuse, "cannot checkpoint in the middle of gradient accumulation (batch \(microStep % config.gradientAccumulation) of \(config.gradientAccumulation))")
        }
        guard let seeded = dpapRandom as? SeededDPAPRandom else {
            throw TransFaceError(.misuse, "a replaced DPAP random source cannot be checkpointed")
        }
        let model = try exportModel(metadata: metadata)
        var header = ModelFile.header(of: model)
        var rng = [noiseRNG.state, partialFC.rng.state] + seeded.states
        header.training = .init(configJSON: config.json, step: UInt64(step), microStep: UInt64(microStep),
                                rngState: rng.flatMap { [$0.0, $0.1, $0.2, $0.3] }, samplerState: samplerState,
                                learningRateScale: learningRateScale)
        rng.removeAll()
        var tensors = ModelFile.tensors(of: parameters, layout: layout)
        tensors.append(.init(name: "partial_fc.weight", shape: [partialFC.numClasses, config.model.embeddingSize],
                             values: UnsafeBufferPointer(partialFC.weight.all)))
        for (name, slab, offset, count) in stateTensors() {
            tensors.append(.init(name: name, shape: [count], values: UnsafeBufferPointer(slab.view(offset, count))))
        }
        try withExtendedLifetime(model) {
            try TensorContainer.write(.checkpoint, header: header, tensors: tensors, to: path)
        }
    }

    /// Continues a run from a checkpoint. `threads` overrides the saved thread count (results
    /// then differ in the last bits from an uninterrupted run).
    ///
    /// A checkpoint of a distributed run (a manifest, or a configuration with a `"distributed"`
    /// block) continues over MPI (`MPICommunicator`: the job this process runs in, or a world of
    /// one outside `mpirun`), re-sharded to its world size; `resume(from:threads:communicator:)`
    /// chooses explicitly (nil: one process, without MPI).
    public static func resume(from path: String, threads: Int? = nil) throws -> Trainer {
        if try ShardedCheckpoint.isManifest(path) {
            _ = try ShardedCheckpoint.readManifest(path)  // a bad manifest is refused before MPI starts
            return try resume(from: path, threads: threads, communicator: MPICommunicator())
        }
        let opened = try TensorContainer.open(.checkpoint, path: path)
        guard let state = opened.header.training else { throw opened.bad("no training state in the checkpoint") }
        var config: TrainerConfig
        do { config = try TrainerConfig.parse(state.configJSON) } catch let e as TransFaceError { throw opened.bad(e.message) }
        if config.distributed != nil { return try resume(from: path, threads: threads, communicator: MPICommunicator()) }
        if let threads {
            try require((1...256).contains(threads), "threads \(threads) is outside 1...256")
            config.threads = threads
        }
        let (model, records) = try readCheckpointParts(opened, state: state, config: config,
                                                       expected: try stateTensorSizes(config: config))
        let t = try Trainer(config: config, initialModel: model)
        t.learningRateScale = state.learningRateScale
        try opened.read(records["partial_fc.weight"]!, into: t.partialFC.weight.all, verify: true)
        for (name, slab, offset, count) in t.stateTensors() {
            try opened.read(records[name]!, into: slab.view(offset, count), verify: true)
        }
        try t.restoreStreams(state.rngState, opened)
        guard state.step <= UInt64(Int32.max) && state.microStep <= UInt64(Int32.max) << 10 else {
            throw opened.bad("saved position (step \(state.step), batch \(state.microStep)) is out of range")
        }
        try t.restorePosition(step: Int(state.step), microStep: Int(state.microStep))
        t.samplerState = state.samplerState
        return t
    }

    /// The noise, Partial FC and DPAP streams from a checkpoint's 6 saved states.
    func restoreStreams(_ words: [UInt64], _ opened: TensorContainer.Opened) throws {
        guard words.count == 4 * 6 else { throw opened.bad("\(words.count / 4) random streams stored, 6 expected") }
        var s: [(UInt64, UInt64, UInt64, UInt64)] = []
        for i in stride(from: 0, to: words.count, by: 4) { s.append((words[i], words[i + 1], words[i + 2], words[i + 3])) }
        noiseRNG = SeededRNG(state: s[0])
        partialFC.rng = SeededRNG(state: s[1])
        dpapRandom = try SeededDPAPRandom(states: Array(s[2...]))
    }

    /// The class centres and the optimizer moments a trainer of `config` checkpoints, with their
    /// sizes in floats, computed without allocating anything (the names `stateTensors` gives);
    /// `centreRows` rows of centres (a shard's), all classes when nil.
    /// The float32 model and the state tensors' records of an opened checkpoint, checked against
    /// `config`: the stored architecture, the tensors `expected` names (and their sizes) and the
    /// stored learning-rate scale. The configuration names the tensors the checkpoint must hold
    /// and their sizes; they are checked against the records (which tile the file exactly) before
    /// a trainer is allocated, so a header claiming enormous tensors is refused, not allocated.
    static func readCheckpointParts(_ opened: TensorContainer.Opened, state: ModelHeader.TrainingState, config: TrainerConfig,
                                    expected: [(name: String, count: Int)]) throws
        -> (model: TransFaceModel, records: [String: TensorRecord]) {
        guard config.model.embedDim == opened.header.config.embedDim && config.model.depth == opened.header.config.depth else {
            throw opened.bad("the stored configuration does not match the stored architecture")
        }
        var options = ModelFile.LoadOptions()
        options.packBlockLinears = false  // a trainer takes the weights as float32
        let model = try ModelFile.readModel(opened, extraTensors: Set(expected.map(\.name)), options: options)
        let records = try checkRecords(opened, expected)
        guard state.learningRateScale.isFinite && state.learningRateScale > 0 && state.learningRateScale <= 1 else {
            throw opened.bad("learning-rate scale \(state.learningRateScale) is outside (0, 1]")
        }
        return (model, records)
    }

    static func stateTensorSizes(config: TrainerConfig, centreRows: Int? = nil) throws -> [(name: String, count: Int)] {
        let c = config.model
        let (centres, overflow) = (centreRows ?? config.numClasses).multipliedReportingOverflow(by: c.embeddingSize)
        try require(!overflow, "num_classes × embedding_size overflows")
        let layout = ParameterLayout(config: c)
        let groups = [try ParameterGroup.backbone(layout: layout, config: c, decay: config.decay),
                      try ParameterGroup.single(name: "partial_fc.weight", count: centres)]
        let moments = config.optimizer == .adamw ? ["exp_avg", "exp_avg_sq"] : ["momentum_buffer"]
        var out = [(name: "partial_fc.weight", count: centres)]
        for g in groups {
            for m in moments { out += g.tensors.map { (name: "optimizer.\(m).\($0.name)", count: $0.count) } }
        }
        return out
    }
}
