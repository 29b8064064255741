// The distributed-training checks, run by Tests/MPI/run.sh under `mpirun -np N`:
//   transface-mpi-check world1            (np 1) the MPI trainer equals the single-process one bit for bit
//   transface-mpi-check gradients [paper] (np 2) every step's gradients and loss equal one process with batch 2B
//   transface-mpi-check repeat            (np 2) the same run twice is bitwise identical
//   transface-mpi-check checkpoint DIR    (np 2) save at step 5, resume at world 2: bitwise the uninterrupted run
//   transface-mpi-check resume1 DIR       (one process, no mpirun) the world-2 checkpoint loads, continues, saves
//   transface-mpi-check resume2 DIR       (np 2) that single-process checkpoint re-shards over 2 ranks
//   transface-mpi-check diverge           (np 2) a rank whose weights drift stops the job with a clear error
//   transface-mpi-check kill DIR          (np 2) rank 1 SIGKILLs itself at step 5 (run.sh checks the job ends)
//   transface-mpi-check loadlast DIR      (one process) the last complete checkpoint of `kill` loads
// Each prints "ok: ..." lines and exits non-zero with "FAIL: ..." on the first failed check.
#if canImport(Glibc)
import Glibc
#endif
import TFCore
import TFDistributed
import TFModel
import TFTrain

/// Normwise relative tolerance of the world-2 gradients against one process with batch 2B (see run.sh).
let gradientTolerance = 1e-5

func fail(_ message: String) -> Never {
    FileHandle.standardError("FAIL: \(message)\n")
    exit(1)
}

enum FileHandle {
    static func standardError(_ s: String) { fputs(s, stderr) }
}

func config(batch: Int, sampleRate: Double, features: Bool, ehsmMode: String = "official", filter: Double = 0,
            distributed: Bool) throws -> TrainerConfig {
    let noise = features ? "\"mask_ratio\": 0.25, \"drop_path_rate\": 0.1, \"clip_grad_norm\": 5," : "\"mask_ratio\": 0, \"drop_path_rate\": 0, \"clip_grad_norm\": null,"
    return try TrainerConfig.parse("""
    {"arch": "custom", "model": {"img_size": 36, "embed_dim": 32, "depth": 2, "num_heads": 4, "mlp_hidden_dim": 64},
     "embedding_size": 16, \(noise) "num_classes": 24, "batch_size": \(batch), "sample_rate": \(sampleRate),
     "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.05}, "schedule": {"warmup_steps": 2, "max_steps": 200},
     "dpap": {"enabled": \(features), "probability": 0.5}, "ehsm": {"enabled": true, "mode": "\(ehsmMode)"},
     "margin": {"s": 16, "m2": 0.2, "interclass_filtering_threshold": \(filter)}, "threads": 1, "seed": 3 \(distributed ? ", \"distributed\": {\"checksum_every\": 5}" : "")}
    """)
}

/// Global batch `step` of the synthetic task: `count` images of 24 classes (a fixed random
/// prototype per class plus noise), the same on every rank.
func globalBatch(step: Int, count: Int) -> ([UInt8], [Int32]) {
    var proto = SeededRNG(seed: 11)
    let prototypes = (0..<24).map { _ in (0..<(36 * 36 * 3)).map { _ in UInt8(truncatingIfNeeded: proto.next()) } }
    var rng = SeededRNG(seed: 1000 + UInt64(step))
    var images: [UInt8] = [], labels: [Int32] = []
    for _ in 0..<count {
        let c = Int(rng.next() % 24)
        labels.append(Int32(c))
        images += prototypes[c].map { UInt8(clamping: Int($0) + Int(rng.next() % 41) - 20) }
    }
    return (images, labels)
}

/// This rank's rows of a global batch.
func localBatch(step: Int, rank: Int, batch: Int, world: Int) -> ([UInt8], [Int32]) {
    let (images, labels) = globalBatch(step: step, count: batch * world)
    let n = 36 * 36 * 3
    return (Array(images[(rank * batch * n)..<((rank + 1) * batch * n)]), Array(labels[(rank * batch)..<((rank + 1) * batch)]))
}

func momentNames(_ t: Trainer) -> [String] {
    t.layout.entries.filter(\.trainable).flatMap { ["optimizer.exp_avg.\($0.name)", "optimizer.exp_avg_sq.\($0.name)"] }
        + ["optimizer.exp_avg.partial_fc.weight", "optimizer.exp_avg_sq.partial_fc.weight"]
}

func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

// MARK: world 1 ≡ one process

func world1() throws {
    let mpi = try MPICommunicator()
    guard mpi.size == 1 else { fail("world1 runs under mpirun -np 1 (size \(mpi.size))") }
    for rate in [1.0, 0.5] {
        let distributed = try Trainer(config: try config(batch: 8, sampleRate: rate, features: true, distributed: true), communicator: mpi)
        let single = try Trainer(config: try config(batch: 8, sampleRate: rate, features: true, distributed: false))
        for step in 0..<20 {
            let (images, labels) = globalBatch(step: step, count: 8)
            let a = try distributed.step(images: images, labels: labels), b = try single.step(images: images, labels: labels)
            guard a.loss.bitPattern == b.loss.bitPattern && a.firstPassLoss.bitPattern == b.firstPassLoss.bitPattern
                    && a.gradientNorm.bitPattern == b.gradientNorm.bitPattern else {
                fail("world 1, sample_rate \(rate), step \(step + 1): loss \(a.loss) vs \(b.loss), norm \(a.gradientNorm) vs \(b.gradientNorm)")
            }
        }
        guard bits(Array(distributed.parameters.all)) == bits(Array(single.parameters.all)) else { fail("world 1: weights differ") }
        guard bits(try distributed.tensor("partial_fc.weight")) == bits(try single.tensor("partial_fc.weight")) else { fail("world 1: centres differ") }
        for name in momentNames(single) where bits(try distributed.tensor(name)) != bits(try single.tensor(name)) {
            fail("world 1: moment \(name) differs")
        }
        print("ok: world 1 under mpirun equals one process bit for bit over 20 steps (sample_rate \(rate); DPAP, EHSM, masking, drop path, clipping on): losses, weights, centres, moments")
    }
}

// MARK: world 2 ≡ one process with batch 2B

/// One process's gradients for the global batch: the backbone per rank-chunk (BatchNorm
/// statistics per chunk, as every rank computes them) and one head over the whole batch
/// restricted to `classes` (the union of the ranks' sampled classes).
struct Reference {
    let config: TrainerConfig
    let layout: ParameterLayout
    let forward: ViTForward
    let backward: ViTBackward
    let ehsm: EHSM
    let parameters: FloatSlab
    let chunkGradients: [FloatSlab]
    let pool: WorkerPool

    init(config: TrainerConfig, preprocess: Preprocess, chunks: Int) throws {
        self.config = config
        layout = ParameterLayout(config: config.model)
        pool = try WorkerPool(threadCount: 1)
        forward = try ViTForward(config: config.model, preprocess: preprocess, maxBatch: config.batchSize, pool: pool, keepActivations: true)
        backward = try ViTBackward(config: config.model, batch: config.batchSize, pool: pool)
        ehsm = try EHSM(config: config.ehsm!, patches: config.model.numPatches)
        parameters = try FloatSlab(count: layout.totalCount)
        let count = layout.totalCount
        chunkGradients = try (0..<chunks).map { _ in try FloatSlab(count: count) }
    }

    /// (loss, backbone gradient, centre gradient rows of `classes`).
    func run(parameters p: UnsafeBufferPointer<Float>, centres: [Float], classes: [Int32], images: [UInt8], labels: [Int32]) throws
        -> (Double, [Float], [Float]) {
        let b = config.batchSize, e = config.model.embeddingSize, chunks = chunkGradients.count, n = 36 * 36 * 3
        parameters.base.update(from: p.baseAddress!, count: p.count)
        let w = ViTWeights(layout: layout, config: config.model, base: parameters.base)
        var embeddings = [Float](), weights = [Float](), stds: [[Float]] = []
        for k in 0..<chunks {
            try images.withUnsafeBufferPointer { i in
                try forward.run(weights: w, input: .rgb8(i.baseAddress! + k * b * n), count: b, mode: .train(updateRunningStatistics: false))
            }
            embeddings += Array(forward.embeddings)
            stds.append(Array(forward.patchStd))
            var out = [Float](repeating: 0, count: b)
            try out.withUnsafeMutableBufferPointer { try ehsm.weights(patchStd: forward.patchStd, batch: b, into: $0) }
            weights += out
        }
        let head = try PartialFC(numClasses: classes.count, embeddingSize: e, maxBatch: chunks * b, margin: config.margin)
        for (i, c) in classes.enumerated() { (head.weight.base + i * e).update(from: Array(centres[(Int(c) * e)..<(Int(c) * e + e)]), count: e) }
        let remapped = labels.map { y in classes.firstIndex(of: y).map { $0 } ?? -1 }
        guard !remapped.contains(-1) else { fail("a label's class was not sampled by any rank") }
        let loss = try head.forward(embeddings: embeddings, labels: remapped, sampleWeights: weights)
        var dEmbedding = [Float](repeating: 0, count: chunks * b * e), dWeight = [Float](repeating: 0, count: chunks * b)
        let paper = config.ehsm!.mode == .paper
        try dEmbedding.withUnsafeMutableBufferPointer { d in
            try dWeight.withUnsafeMutableBufferPointer { try head.backward(embeddingGradient: d, sampleWeightGradient: paper ? $0 : nil) }
        }
        for k in 0..<chunks {
            try images.withUnsafeBufferPointer { i in
                try forward.run(weights: w, input: .rgb8(i.baseAddress! + k * b * n), count: b, mode: .train(updateRunningStatistics: false))
            }
            chunkGradients[k].zero()
            var dStd = [Float](repeating: 0, count: b * config.model.numPatches)
            if paper {
                try dStd.withUnsafeMutableBufferPointer { out in
                    try stds[k].withUnsafeBufferPointer { s in
                        try dWeight.withUnsafeBufferPointer {
                            try ehsm.backward(patchStd: s, batch: b, weightGradient: UnsafeBufferPointer(rebasing: $0[(k * b)..<(k * b + b)]), into: out)
                        }
                    }
                }
            }
            try dEmbedding.withUnsafeBufferPointer { d in
                try dStd.withUnsafeBufferPointer { s in
                    try backward.run(weights: w, grads: ViTWeights(layout: layout, config: config.model, base: chunkGradients[k].base),
                                     forward: forward, dEmbedding: d.baseAddress! + k * b * e, dPatchStd: paper ? s.baseAddress! : nil)
                }
            }
        }
        var total = Array(chunkGradients[0].all)
        for k in 1..<chunks { for i in total.indices { total[i] += chunkGradients[k].base[i] } }
        return (loss, total, Array(head.gradient.all))
    }
}

/// ‖a − b‖ / ‖b‖ (0 when both are 0).
func relativeError(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var d = 0.0, n = 0.0
    for (x, y) in zip(a, b) { d += Double(x - y) * Double(x - y); n += Double(y) * Double(y) }
    return n == 0 ? (d == 0 ? 0 : .infinity) : (d / n).squareRoot()
}

func gatherCentres(_ t: Trainer, _ comm: any Communicator) throws -> [Float] {
    let e = t.config.model.embeddingSize
    let counts = (0..<comm.size).map { ClassShard(total: t.config.numClasses, rank: $0, size: comm.size).count * e }
    var all = [Float](repeating: 0, count: t.config.numClasses * e)
    try all.withUnsafeMutableBufferPointer { try comm.allgatherv(UnsafeBufferPointer(t.partialFC.weight.all), counts: counts, into: $0) }
    return all
}

/// The sorted union of every rank's sampled classes of the last step (global ids).
func gatherSampled(_ t: Trainer, _ comm: any Communicator) throws -> [Int32] {
    let mine = t.partialFC.sampledClasses.map { Float(Int($0) + t.partialFC.classStart) }
    var counts = [Int32](repeating: 0, count: comm.size)
    let mineCount = [Int32(mine.count)]
    try mineCount.withUnsafeBufferPointer { m in try counts.withUnsafeMutableBufferPointer { try comm.allgather(m, into: $0) } }
    var all = [Float](repeating: 0, count: Int(counts.reduce(0, +)))
    try mine.withUnsafeBufferPointer { m in try all.withUnsafeMutableBufferPointer { try comm.allgatherv(m, counts: counts.map(Int.init), into: $0) } }
    return all.map { Int32($0) }.sorted()
}

func gradients(paper: Bool) throws {
    let mpi = try MPICommunicator()
    guard mpi.size == 2 else { fail("gradients runs under mpirun -np 2 (size \(mpi.size))") }
    let b = 4, e = 16
    // Interclass filtering (official only): a rank not holding a row's label filters all its classes.
    for (rate, filter) in paper ? [(1.0, 0.0), (0.5, 0.0)] : [(1.0, 0.0), (0.5, 0.0), (1.0, 0.1)] {
        let c = try config(batch: b, sampleRate: rate, features: false, ehsmMode: paper ? "paper" : "official", filter: filter, distributed: true)
        let trainer = try Trainer(config: c, communicator: mpi)
        let reference = try Reference(config: c, preprocess: trainer.preprocess, chunks: 2)
        var worst = (backbone: 0.0, centres: 0.0, loss: 0.0), worstTensor = ""
        for step in 0..<20 {
            let before = Array(trainer.parameters.all)
            let centres = try gatherCentres(trainer, mpi)
            let (images, labels) = globalBatch(step: step, count: 2 * b)
            let (li, ll) = localBatch(step: step, rank: mpi.rank, batch: b, world: 2)
            let result = try trainer.step(images: li, labels: ll)
            let classes = rate < 1 ? try gatherSampled(trainer, mpi) : (0..<24).map(Int32.init)
            let (loss, backbone, centreGradient) = try before.withUnsafeBufferPointer {
                try reference.run(parameters: $0, centres: centres, classes: classes, images: images, labels: labels)
            }
            worst.loss = max(worst.loss, abs(result.loss - loss) / abs(loss))
            let g = Array(trainer.gradients.all)
            let trainable = trainer.layout.entries.filter(\.trainable)
            func norm(_ a: ArraySlice<Float>) -> Double { (a.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot() }
            let whole = trainable.reduce(0.0) { $0 + pow(norm(backbone[$1.offset..<($1.offset + $1.count)]), 2) }.squareRoot()
            for entry in trainable {
                let r = entry.offset..<(entry.offset + entry.count)
                if norm(backbone[r]) < gradientTolerance * whole {
                    // Zero by construction (e.g. a bias under a later training-mode BatchNorm, which
                    // removes any shift): both sides must be rounding noise of the whole gradient.
                    let n = norm(g[r])
                    if n > gradientTolerance * whole { fail("step \(step + 1): gradient of \(entry.name) should vanish, has norm \(n) (whole \(whole))") }
                    continue
                }
                let err = relativeError(g[r], backbone[r])
                if err > worst.backbone { (worst.backbone, worstTensor) = (err, "\(entry.name) at step \(step + 1)") }
                if err > gradientTolerance { fail("step \(step + 1), sample_rate \(rate): gradient of \(entry.name) differs by \(err) (normwise relative)") }
            }
            let mineG = Array(trainer.partialFC.gradient.all)
            var ours = [Float](), theirs = [Float]()
            for local in trainer.partialFC.sampledClasses {
                let global = Int32(Int(local) + trainer.partialFC.classStart)
                let i = classes.firstIndex(of: global)!
                ours += mineG[(Int(local) * e)..<(Int(local) * e + e)]
                theirs += centreGradient[(i * e)..<(i * e + e)]
            }
            worst.centres = max(worst.centres, relativeError(ours[...], theirs[...]))
            if worst.centres > gradientTolerance { fail("step \(step + 1), sample_rate \(rate): centre gradients differ by \(worst.centres)") }
            if worst.loss > gradientTolerance { fail("step \(step + 1), sample_rate \(rate): loss \(result.loss) vs \(loss)") }
        }
        if mpi.rank == 0 {
            print("ok: world 2 (local batch \(b)) equals one process with batch \(2 * b) over 20 steps, sample_rate \(rate),\(filter > 0 ? " interclass filtering \(filter)," : "") EHSM \(paper ? "paper" : "official"): worst normwise relative difference backbone \(worst.backbone) (\(worstTensor)), centres \(worst.centres), loss \(worst.loss) (tolerance \(gradientTolerance))")
        }
    }
}

func repeatRun() throws {
    let mpi = try MPICommunicator()
    func run() throws -> ([Float], [Float], [Double]) {
        let t = try Trainer(config: try config(batch: 4, sampleRate: 0.5, features: true, distributed: true), communicator: mpi)
        var losses: [Double] = []
        for step in 0..<20 {
            let (i, l) = localBatch(step: step, rank: mpi.rank, batch: 4, world: mpi.size)
            losses.append(try t.step(images: i, labels: l).loss)
        }
        return (Array(t.parameters.all), try t.tensor("partial_fc.weight"), losses)
    }
    let a = try run(), b = try run()
    guard bits(a.0) == bits(b.0) && bits(a.1) == bits(b.1) && a.2.map(\.bitPattern) == b.2.map(\.bitPattern) else {
        fail("rank \(mpi.rank): two identical world-\(mpi.size) runs differ")
    }
    if mpi.rank == 0 { print("ok: the same world-\(mpi.size) run (all features, sample_rate 0.5) twice is bitwise identical over 20 steps") }
}

// MARK: checkpoints

func writeFloats(_ values: [Float], _ path: String) throws {
    let w = try AtomicFileWriter(path: path)
    try values.withUnsafeBytes { try w.write($0) }
    try w.commit()
}

func readFloats(_ path: String) throws -> [Float] {
    let f = try ReadableFile(path: path)
    var out = [Float](repeating: 0, count: Int(f.size) / 4)
    try out.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
    return out
}

/// Every rank's rows of the centres and of their moments, in class order (collective).
func gatheredHead(_ t: Trainer, _ comm: any Communicator) throws -> [Float] {
    var out: [Float] = []
    let e = t.config.model.embeddingSize
    let counts = (0..<comm.size).map { ClassShard(total: t.config.numClasses, rank: $0, size: comm.size).count * e }
    for name in ["partial_fc.weight", "optimizer.exp_avg.partial_fc.weight", "optimizer.exp_avg_sq.partial_fc.weight"] {
        let mine = try t.tensor(name)
        var all = [Float](repeating: 0, count: t.config.numClasses * e)
        try mine.withUnsafeBufferPointer { m in try all.withUnsafeMutableBufferPointer { try comm.allgatherv(m, counts: counts, into: $0) } }
        out += all
    }
    return out
}

/// Weights (trainable) and backbone moments: identical on every rank.
func backboneState(_ t: Trainer) throws -> [Float] {
    var out: [Float] = []
    for e in t.layout.entries where e.trainable {
        out += try t.tensor(e.name) + t.tensor("optimizer.exp_avg.\(e.name)") + t.tensor("optimizer.exp_avg_sq.\(e.name)")
    }
    return out
}

func checkpointAtWorld2(_ dir: String) throws {
    let mpi = try MPICommunicator()
    guard mpi.size == 2 else { fail("checkpoint runs under mpirun -np 2") }
    let c = try config(batch: 4, sampleRate: 0.5, features: true, distributed: true)
    func steps(_ t: Trainer, _ range: Range<Int>) throws -> [Double] {
        try range.map { step in
            let (i, l) = localBatch(step: step, rank: mpi.rank, batch: 4, world: 2)
            return try t.step(images: i, labels: l).loss
        }
    }
    let straight = try Trainer(config: c, communicator: mpi)
    let lossesStraight = try steps(straight, 0..<10)
    let first = try Trainer(config: c, communicator: mpi)
    _ = try steps(first, 0..<3)
    try first.saveCheckpoint(to: dir + "/run.tfc")
    _ = try steps(first, 3..<5)
    first.samplerState = [7, 7]
    try first.saveCheckpoint(to: dir + "/run.tfc")
    try mpi.barrier()
    for r in 0..<2 {
        guard access(ShardedCheckpoint.shardPath(dir + "/run.tfc", step: 3, rank: r), F_OK) != 0 else { fail("the step-3 shard of rank \(r) was not removed") }
    }
    try writeFloats(try gatheredHead(first, mpi), dir + "/head-step5.bin")
    if mpi.rank == 0 { try writeFloats(try backboneState(first), dir + "/backbone-step5.bin") }
    let resumed = try Trainer.resume(from: dir + "/run.tfc", communicator: mpi)
    guard resumed.step == 5, resumed.samplerState == [7, 7], resumed.config.batchSize == 4 else { fail("resumed at step \(resumed.step)") }
    let lossesResumed = try steps(resumed, 5..<10)
    guard lossesResumed.map(\.bitPattern) == lossesStraight[5...].map(\.bitPattern),
          bits(Array(resumed.parameters.all)) == bits(Array(straight.parameters.all)),
          bits(try gatheredHead(resumed, mpi)) == bits(try gatheredHead(straight, mpi)) else {
        fail("rank \(mpi.rank): the run resumed at world 2 differs from the uninterrupted one")
    }
    if mpi.rank == 0 { print("ok: saved at world 2 (step 5; step-3 shards removed), resumed at world 2: 5 more steps bitwise equal to the uninterrupted run (losses, weights, centres, moments)") }
}

func resumeInOneProcess(_ dir: String) throws {
    let t = try Trainer.resume(from: dir + "/run.tfc", communicator: nil)
    guard t.worldSize == 1, t.step == 5, t.config.batchSize == 8, t.config.distributed == nil, t.samplerState == [7, 7] else {
        fail("world-2 checkpoint resumed in one process: world \(t.worldSize), step \(t.step), batch \(t.config.batchSize)")
    }
    let head = try ["partial_fc.weight", "optimizer.exp_avg.partial_fc.weight", "optimizer.exp_avg_sq.partial_fc.weight"].flatMap { try t.tensor($0) }
    guard bits(head) == bits(try readFloats(dir + "/head-step5.bin")) else { fail("the re-sharded centres or moments differ") }
    guard bits(try backboneState(t)) == bits(try readFloats(dir + "/backbone-step5.bin")) else { fail("the backbone or its moments differ") }
    var losses: [Double] = []
    for step in 5..<8 {
        let (i, l) = globalBatch(step: step, count: 8)
        losses.append(try t.step(images: i, labels: l).loss)
    }
    guard losses.allSatisfy(\.isFinite) else { fail("continuation in one process: losses \(losses)") }
    try t.saveCheckpoint(to: dir + "/single.tfc")
    try writeFloats(head.isEmpty ? [] : try ["partial_fc.weight", "optimizer.exp_avg.partial_fc.weight", "optimizer.exp_avg_sq.partial_fc.weight"].flatMap { try t.tensor($0) },
                    dir + "/head-step8.bin")
    try writeFloats(try backboneState(t), dir + "/backbone-step8.bin")
    print("ok: the world-2 checkpoint resumes in one process (batch 4 × 2 → 8; all centres and moments, backbone, position bitwise) and continues (losses \(losses))")
}

func reshardOverTwo(_ dir: String) throws {
    let mpi = try MPICommunicator()
    let t = try Trainer.resume(from: dir + "/single.tfc", communicator: mpi)
    guard t.worldSize == 2, t.step == 8, t.config.batchSize == 4 else { fail("single-process checkpoint over 2 ranks: step \(t.step), batch \(t.config.batchSize)") }
    guard bits(try gatheredHead(t, mpi)) == bits(try readFloats(dir + "/head-step8.bin")),
          bits(try backboneState(t)) == bits(try readFloats(dir + "/backbone-step8.bin")) else { fail("rank \(mpi.rank): re-sharded state differs") }
    for step in 8..<10 {
        let (i, l) = localBatch(step: step, rank: mpi.rank, batch: 4, world: 2)
        guard try t.step(images: i, labels: l).loss.isFinite else { fail("continuation at world 2 is not finite") }
    }
    try t.verifyReplicas()
    if mpi.rank == 0 { print("ok: a single-process checkpoint resumes over 2 ranks (classes re-sharded bitwise, batch 8 → 4 per rank) and continues with identical replicas") }
}

func diverge() throws {
    let mpi = try MPICommunicator()
    let t = try Trainer(config: try config(batch: 4, sampleRate: 1, features: false, distributed: true), communicator: mpi)
    do {
        for step in 0..<10 {
            let (i, l) = localBatch(step: step, rank: mpi.rank, batch: 4, world: 2)
            _ = try t.step(images: i, labels: l)
            if step == 1 && mpi.rank == 1 { t.parameters.base[t.layout.entries.first(where: \.trainable)!.offset] += 1e-3 }
        }
    } catch let e as TransFaceError where e.message.contains("step 5: the ranks' weights diverged") {
        if mpi.rank == 0 { print("ok: weights perturbed on one rank are caught by the checksum at step 5: \(e.message)") }
        return
    }
    fail("rank \(mpi.rank): the divergence was not detected")
}

func killRank(_ dir: String) throws {
    let mpi = try MPICommunicator()
    let t = try Trainer(config: try config(batch: 4, sampleRate: 1, features: false, distributed: true), communicator: mpi)
    for step in 0..<1000 {
        if step == 5 && mpi.rank == 1 { kill(getpid(), SIGKILL) }
        let (i, l) = localBatch(step: step, rank: mpi.rank, batch: 4, world: 2)
        _ = try t.step(images: i, labels: l)
        if t.step % 2 == 0 { try t.saveCheckpoint(to: dir + "/killed.tfc") }
    }
    fail("rank \(mpi.rank) trained on after its peer was killed")
}

func loadLast(_ dir: String) throws {
    let t = try Trainer.resume(from: dir + "/killed.tfc", communicator: nil)
    guard t.step == 4 else { fail("the last complete checkpoint is of step \(t.step), expected 4") }
    print("ok: after the SIGKILL the last complete checkpoint (step 4) loads in one process")
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    switch arguments.first {
    case "world1": try world1()
    case "gradients": try gradients(paper: arguments.dropFirst().first == "paper")
    case "repeat": try repeatRun()
    case "checkpoint": try checkpointAtWorld2(arguments[1])
    case "resume1": try resumeInOneProcess(arguments[1])
    case "resume2": try reshardOverTwo(arguments[1])
    case "diverge": try diverge()
    case "kill": try killRank(arguments[1])
    case "loadlast": try loadLast(arguments[1])
    default: fail("usage: transface-mpi-check world1|gradients [paper]|repeat|checkpoint DIR|resume1 DIR|resume2 DIR|diverge|kill DIR|loadlast DIR")
    }
    if !["resume1", "loadlast"].contains(arguments[0]) { try MPICommunicator.finalize() }
} catch {
    fail("\(error)")
}
