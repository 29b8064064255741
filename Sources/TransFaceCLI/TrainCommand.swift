import ArgumentParser
import TFCore
import TFData
import TFDistributed
import TFEval
import TFModel
import TFTrain

#if canImport(Glibc)
import Glibc
#endif

/// `transface train`: trains a model from a run configuration (trainer settings, data, val
/// targets, checkpoints), with live progress, a JSON-lines log, periodic verification,
/// checkpoints that resume bit for bit, and Ctrl-C saving a checkpoint before it exits.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train a TransFace model.",
        discussion: """
            The run configuration (JSON) holds the trainer's settings ("trainer"), the data ("data": a \
            RecordIO .rec, an image folder, or a list file with optional 5-point landmarks to align on \
            the fly), the verification sets ("val_targets"), and how often to log, evaluate and \
            checkpoint. `transface configs` lists the shipped ones (official recipes and the LFW demo); \
            --config takes a file or one of those names; a configuration may name a "base" it is \
            merged over (--set applies after the merge), and `transface configs --show NAME` prints \
            what a run resolves to. The output folder receives run.json, \
            train.jsonl (one record per logged step and evaluation), checkpoints/, model.tfm and eval/.

            Ctrl-C (or SIGTERM) finishes the current step, writes a checkpoint and exits with status \
            130; `transface train --resume OUTPUT/checkpoints/step-N.tfc` continues exactly where it stopped.

            Distributed: with a "distributed" block in the trainer settings (`--set \
            trainer.distributed.backend=mpi`), `mpirun -np N transface train ...` trains data parallel \
            over N ranks (Open MPI, loaded at run time), batch_size images per rank and step; rank 0 \
            logs, evaluates and writes model.tfm, every rank writes its checkpoint shard. A checkpoint \
            resumes at any world size (the global batch is kept); without the block it resumes in one process.
            """)

    @Option(name: .long, help: "Run configuration: a JSON file or a shipped config name (see `transface configs`).")
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a configuration value (repeatable).", valueName: "key.path=value"))
    var overrides: [String] = []

    @Option(name: .long, help: "Continue from a checkpoint (its run.json is used unless --config is given).")
    var resume: String?

    @Option(name: .long, help: "Output folder (overrides the configuration's \"output\").")
    var output: String?

    @Option(name: .long, help: "Trainer threads (overrides trainer.threads; changing it on resume changes the last bits).")
    var threads: Int?

    @Option(name: .customLong("stop-after"), help: "Stop (with a checkpoint) after this many optimizer steps in total, without changing the schedule.")
    var stopAfter: Int?

    @Flag(name: .customLong("plain-progress"), help: "Print plain periodic lines even on a terminal.")
    var plainProgress = false

    func validate() throws {
        if config == nil && resume == nil { throw ValidationError("give --config FILE|NAME, or --resume CHECKPOINT") }
        if let threads, !(1...256).contains(threads) { throw ValidationError("--threads must be in 1...256") }
        if let stopAfter, stopAfter < 1 { throw ValidationError("--stop-after must be at least 1") }
    }

    func run() throws {
        var communicator: (any Communicator)?
        do {
            try train(&communicator)
            if communicator != nil { try MPICommunicator.finalize() }
        } catch let e as ExitCode {
            if communicator != nil { try MPICommunicator.finalize() }
            throw e
        } catch {
            // The other ranks would wait in their next collective: end the whole job.
            if let comm = communicator, comm.size > 1 {
                fputs("Error (rank \(comm.rank) of \(comm.size)): \(error)\n", stderr)
                comm.abort(code: 1)
            }
            throw error
        }
    }

    private func train(_ communicator: inout (any Communicator)?) throws {
        // The configuration as run (bases merged, then overrides and --output applied) is saved as
        // run.json, which a resume without --config reads.
        var document = try JSONValue.parse(try TrainRunConfig.applyingAll(overrides, to: try runConfigText()))
        if let output { document = try TrainRunConfig.setting(["output"], to: .string(output), in: document) }
        let run = try TrainRunConfig.parse(document.text)
        try DataFiles.makeDirectories(run.output + "/checkpoints")

        let data = try TrainData(run)
        let trainer: Trainer
        var json = try run.trainerJSON(datasetCount: data.dataset.count, datasetClasses: data.dataset.numClasses)
        if let threads { json = try TrainRunConfig.applying("threads=\(threads)", to: try JSONValue.parse(json)).text }
        // The run's trainer settings say whether this is one rank of an MPI job (also on resume).
        let settings = resume == nil ? try TrainerConfig.parse(json) : try? TrainerConfig.parse(json)
        communicator = settings?.distributed != nil ? try MPICommunicator() : nil
        if let resume {
            trainer = try Trainer.resume(from: resume, threads: threads, communicator: communicator)
        } else {
            trainer = try Trainer(config: settings!, communicator: communicator)
        }
        let lead = trainer.rank == 0  // logs, evaluates, writes run.json and the model
        if lead { try CLISupport.write(document.text, to: run.output + "/run.json") }
        let c = trainer.config
        if let classes = data.dataset.numClasses, classes > c.numClasses {
            throw TransFaceError.invalidArgument("the data has \(classes) classes, the trainer \(c.numClasses) (trainer.num_classes)")
        }
        var options = DataLoader.Options()
        options.batchSize = c.batchSize
        options.threads = run.loaderThreads
        options.seed = c.seed
        options.flip = run.flip
        options.width = c.model.imgSize
        options.height = c.model.imgSize
        options.rank = trainer.rank
        options.worldSize = trainer.worldSize
        let position = trainer.samplerState.isEmpty ? nil : try LoaderPosition(words: Self.words(trainer.samplerState))
        let loader = try DataLoader(dataset: data.dataset, decode: data.decoder(size: c.model.imgSize, template: trainer.preprocess.alignTemplate),
                                    options: options, resume: position)
        defer { loader.close() }

        let lastStep = min(c.maxSteps, stopAfter ?? c.maxSteps)
        let progress = try TrainProgress(logPath: lead ? run.output + "/train.jsonl" : "/dev/null", totalSteps: c.maxSteps,
                                         batchSize: c.batchSize * c.gradientAccumulation * trainer.worldSize,
                                         firstStep: trainer.step, live: plainProgress || !lead ? false : nil, quiet: !lead)
        let validator = try Validator(lead ? run.valTargets : [], preferLandmarks: run.preferLandmarks, threads: c.threads)  // rank 0 evaluates
        progress.note("start", step: trainer.step, "training \(c.model.arch) (D \(c.model.embedDim), depth \(c.model.depth)) on \(data.dataset.count) images of \(c.numClasses) classes: steps \(trainer.step + 1)...\(lastStep) of \(c.maxSteps), batch \(c.batchSize)\(trainer.worldSize > 1 ? " × \(trainer.worldSize) ranks" : ""), \(c.threads) threads",
                      fields: "\"images\":\(data.dataset.count),\"classes\":\(c.numClasses),\"max_steps\":\(c.maxSteps)")
        InterruptFlag.install()

        var checkpoints = CheckpointFolder(path: run.output + "/checkpoints", keep: run.keepCheckpoints)
        func checkpoint() throws {
            let path = try checkpoints.save(trainer)
            progress.note("checkpoint", step: trainer.step, "step \(trainer.step): checkpoint \(path)", fields: "\"path\":\(JSONText.quoted(path))")
        }
        while trainer.step < lastStep {
            guard let batch = try loader.next() else { break }
            let result = try batch.images.withUnsafeBufferPointer { try trainer.step(images: $0.baseAddress!, labels: batch.labels) }
            trainer.samplerState = Self.bytes(batch.position.words)
            guard result.optimizerStepped || result.skipped else { continue }
            if result.skipped { progress.note("skipped", step: trainer.step, "step \(trainer.step + 1): non-finite loss or gradients, batch skipped") }
            progress.step(trainer.step, loss: result.loss, lr: result.learningRate, skipped: result.skipped, logEvery: run.logEvery)
            let boundary = trainer.microStep % c.gradientAccumulation == 0
            if try boundary && Self.interrupted(communicator) {
                try checkpoint()
                progress.note("interrupted", step: trainer.step, "interrupted at step \(trainer.step); resume with: transface train --resume \(checkpoints.latest ?? "")")
                throw ExitCode(130)
            }
            if lead && run.valEvery > 0 && trainer.step % run.valEvery == 0 && trainer.step < lastStep {
                try validator.run(try trainer.exportModel(), step: trainer.step, progress: progress)
            }
            if run.checkpointEvery > 0 && trainer.step % run.checkpointEvery == 0 && trainer.step < lastStep { try checkpoint() }
        }
        try checkpoint()
        if trainer.step < c.maxSteps {
            progress.note("stopped", step: trainer.step, "stopped at step \(trainer.step) of \(c.maxSteps) (--stop-after)")
            return
        }
        guard lead else { return }
        let model = try trainer.exportModel(metadata: [("trained_steps", "\(trainer.step)")])
        try ModelFile.write(model, to: run.output + "/model.tfm")
        progress.note("finished", step: trainer.step, "finished \(trainer.step) steps: model \(run.output)/model.tfm",
                      fields: "\"model\":\(JSONText.quoted(run.output + "/model.tfm"))")
        let reports = try validator.run(model, step: trainer.step, progress: progress)
        if !reports.isEmpty { try validator.writeROC(reports, to: run.output + "/eval") }
    }

    /// The run configuration's text, its bases merged in: --config (a file or a shipped name), or
    /// the run.json of the output folder the resumed checkpoint lives in.
    private func runConfigText() throws -> String {
        if let config { return try RunConfigBases.resolved(config).text }
        let folder = DataFiles.folder(of: DataFiles.folder(of: resume!))
        let path = folder + "/run.json"
        guard DataFiles.isFile(path) else {
            throw TransFaceError.notFound("no --config given and no run.json in '\(folder)' (the checkpoint's run folder)")
        }
        return try RunConfigBases.resolved(text: try DataFiles.readText(path), name: path).text
    }

    /// Ctrl-C/SIGTERM seen (by any rank: they must stop at the same step to checkpoint together).
    private static func interrupted(_ communicator: (any Communicator)?) throws -> Bool {
        var flag = [InterruptFlag.raised ? 1.0 : 0.0]
        try flag.withUnsafeMutableBufferPointer { try communicator?.allreduceMax($0) }
        return flag[0] != 0
    }

    private static func bytes(_ words: [UInt64]) -> [UInt8] {
        words.flatMap { w in (0..<8).map { UInt8(truncatingIfNeeded: w >> (8 * $0)) } }
    }

    private static func words(_ bytes: [UInt8]) throws -> [UInt64] {
        guard bytes.count % 8 == 0 else { throw TransFaceError.format("the checkpoint's loader position is \(bytes.count) bytes, not whole words") }
        return stride(from: 0, to: bytes.count, by: 8).map { i in (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[i + $1]) << (8 * $1) } }
    }
}

/// Checkpoints of a run: `step-NNNNNNNN.tfc`, the newest `keep` kept. Each is written atomically
/// (temporary file, fsync, rename), so a crash leaves the previous ones intact. Distributed, the
/// `.tfc` is the manifest of the ranks' shards; rank 0 deletes old manifests with their shards.
struct CheckpointFolder {
    let path: String
    let keep: Int
    private(set) var latest: String?

    init(path: String, keep: Int) {
        self.path = path
        self.keep = keep
    }

    mutating func save(_ trainer: Trainer) throws -> String {
        let digits = String(trainer.step)
        let file = path + "/step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".tfc"
        try trainer.saveCheckpoint(to: file)
        latest = file
        let all = try DataFiles.list(path).filter { $0.hasPrefix("step-") && $0.hasSuffix(".tfc") }.sorted()
        if trainer.rank == 0 { for old in all.dropLast(keep) { ShardedCheckpoint.remove(path + "/" + old) } }
        return file
    }
}

/// Ctrl-C and SIGTERM set a flag the training loop polls at step boundaries; a second signal
/// gets the default action (the process ends at once).
enum InterruptFlag {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0

    static var raised: Bool { flag != 0 }

    static func install() {
        flag = 0
        for s in [SIGINT, SIGTERM] {
            signal(s) { sig in
                InterruptFlag.flag = 1
                signal(sig, SIG_DFL)
            }
        }
    }
}
