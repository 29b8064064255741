#if canImport(Glibc)
import Glibc
#endif
import TFCore
import TFDistributed
import TFModel

/// Checkpoints of a run over several ranks: every rank writes its own shard `<path>.step<N>.rank<r>`
/// (the single-process checkpoint format, atomically: temporary file, fsync, rename) holding the
/// backbone, its moments, the rank's random streams and its rows of the class centres and their
/// moments; once every shard is complete, rank 0 writes the manifest `<path>` (JSON, atomically)
/// naming them; then each rank deletes its shards of earlier steps. A crash at any point leaves
/// the previous manifest and the shards it names intact, and a temporary file is never named.
///
/// A manifest or a single-process checkpoint resumes at any world size: each rank reads the
/// backbone from its own (or rank 0's) shard and gathers its class rows from the shards that
/// overlap them. The global batch is kept: the per-rank `batch_size` becomes saved batch × saved
/// world ÷ new world (which must divide). Ranks that existed keep their random streams (so a
/// resume at the same world size continues bit for bit); new ranks get streams seeded by
/// (seed, step, rank).
public enum ShardedCheckpoint {
    public static let format = "transface-sharded-checkpoint"

    public struct Shard: Equatable {
        /// The shard's file name, in the manifest's folder.
        public var file: String
        public var start: Int
        public var count: Int
    }

    public struct Manifest: Equatable {
        public var step: Int
        public var numClasses: Int
        /// One per rank of the saving run, in rank order; their classes tile 0..<numClasses.
        public var shards: [Shard]
        public var worldSize: Int { shards.count }
    }

    public static func shardPath(_ path: String, step: Int, rank: Int) -> String { "\(path).step\(step).rank\(rank)" }

    /// True when `path` is a manifest (a JSON object), false for anything else (or an unreadable path).
    public static func isManifest(_ path: String) throws -> Bool {
        guard let file = try? ReadableFile(path: path), file.size > 0 else { return false }
        return try file.readBytes(at: 0, count: 1) == [UInt8(ascii: "{")]
    }

    public static func readManifest(_ path: String) throws -> Manifest {
        let file = try ReadableFile(path: path)
        guard file.size <= 1 << 24 else { throw TransFaceError.format("'\(path)': a checkpoint manifest of \(file.size) bytes is too large") }
        let text = String(decoding: try file.readBytes(at: 0, count: Int(file.size)), as: UTF8.self)
        func bad(_ m: String) -> TransFaceError { .format("'\(path)': checkpoint manifest: \(m)") }
        do {
            var root = try JSONObjectReader(try JSONValue.parse(text), path: "manifest")
            guard try root.string("format") == format else { throw bad("not a \(format)") }
            let step = try root.integer("step", in: 0...Int(Int32.max))
            let classes = try root.integer("num_classes", in: 1...Int(Int32.max))
            guard case .array(let items)? = root.value("shards"), !items.isEmpty, items.count <= 1 << 16 else { throw bad("no shards") }
            var shards: [Shard] = [], next = 0
            for (r, item) in items.enumerated() {
                var o = try JSONObjectReader(item, path: "manifest.shards[\(r)]")
                let shard = Shard(file: try o.string("file"), start: try o.integer("start", in: 0...classes),
                                  count: try o.integer("count", in: 1...classes))
                try o.finish()
                guard !shard.file.isEmpty && !shard.file.contains("/") && shard.file != "." && shard.file != ".." else {
                    throw bad("shard file '\(shard.file)' must be a file name in the manifest's folder")
                }
                guard shard.start == next else { throw bad("shard \(r) starts at class \(shard.start), expected \(next)") }
                next += shard.count
                shards.append(shard)
            }
            guard next == classes else { throw bad("the shards hold \(next) classes, not \(classes)") }
            try root.finish()
            return Manifest(step: step, numClasses: classes, shards: shards)
        } catch let e as TransFaceError where e.kind == .invalidArgument {
            throw bad(e.message)
        }
    }

    static func write(_ m: Manifest, to path: String) throws {
        let shards = m.shards.map { JSONValue.object([("file", .string($0.file)), ("start", .number(Double($0.start))),
                                                      ("count", .number(Double($0.count)))]) }
        let json = JSONValue.object([("format", .string(format)), ("step", .number(Double(m.step))),
                                     ("num_classes", .number(Double(m.numClasses))), ("shards", .array(shards))])
        let writer = try AtomicFileWriter(path: path)
        try writer.write(Array(json.prettyText.utf8))
        try writer.commit()
    }

    /// Deletes a checkpoint: a single-process file, or a manifest and the shards it names.
    public static func remove(_ path: String) {
        if (try? isManifest(path)) == true, let m = try? readManifest(path) {
            let folder = path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
            for shard in m.shards { unlink(folder + shard.file) }
        }
        unlink(path)
    }

    /// Deletes `<path>.step<N>.rank<rank>` for every N but `keep` (best effort).
    public static func removeShards(of path: String, rank: Int, except keep: Int) {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard let dir = opendir(folder.isEmpty ? "/" : folder) else { return }
        defer { closedir(dir) }
        let prefix = base + ".step", suffix = ".rank\(rank)"
        var stale: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard name.hasPrefix(prefix) && name.hasSuffix(suffix) && name.count > prefix.count + suffix.count else { continue }
            let digits = name.dropFirst(prefix.count).dropLast(suffix.count)
            guard digits.allSatisfy(\.isNumber), let step = Int(digits), step != keep else { continue }
            stale.append((folder.isEmpty ? "" : folder + "/") + name)
        }
        for file in stale { unlink(file) }
    }
}

extension Trainer {
    /// Every rank: its shard, then (rank 0) the manifest, then the cleanup of older shards. The
    /// ranks agree after each phase, so a failure on one rank is an error on all, not a hang.
    func saveShardedCheckpoint(to path: String, communicator comm: any Communicator) throws {
        let file = ShardedCheckpoint.shardPath(path, step: step, rank: comm.rank)
        var failure: Error?
        do { try writeCheckpointFile(to: file, metadata: [("checkpoint_shard", "\(comm.rank)/\(comm.size)")]) } catch { failure = error }
        try agree(failure, comm, "could not write its checkpoint shard")
        if comm.rank == 0 {
            let name = { (r: Int) in String(ShardedCheckpoint.shardPath(path, step: self.step, rank: r).split(separator: "/").last!) }
            let shards = (0..<comm.size).map { r -> ShardedCheckpoint.Shard in
                let s = ClassShard(total: config.numClasses, rank: r, size: comm.size)
                return .init(file: name(r), start: s.start, count: s.count)
            }
            do { try ShardedCheckpoint.write(.init(step: step, numClasses: config.numClasses, shards: shards), to: path) } catch { failure = error }
        }
        try agree(failure, comm, "could not write the checkpoint manifest")
        ShardedCheckpoint.removeShards(of: path, rank: comm.rank, except: step)
    }

    private func agree(_ failure: Error?, _ comm: any Communicator, _ what: String) throws {
        var flag = [failure == nil ? 0.0 : 1.0]
        try flag.withUnsafeMutableBufferPointer { try comm.allreduceMax($0) }
        if let failure { throw failure }
        if flag[0] != 0 { throw TransFaceError(.io, "checkpoint at step \(step): another rank \(what); the checkpoint is incomplete") }
    }

    /// Continues from a manifest or a single-process checkpoint, in one process (`communicator`
    /// nil: the configuration's `"distributed"` block is dropped) or over `communicator`'s ranks,
    /// whatever the world size that saved it (see `ShardedCheckpoint`).
    public static func resume(from path: String, threads: Int? = nil, communicator: (any Communicator)?) throws -> Trainer {
        let rank = communicator?.rank ?? 0, world = communicator?.size ?? 1
        var sources: [(file: String, start: Int, count: Int)]
        var manifestStep: Int?
        if try ShardedCheckpoint.isManifest(path) {
            let m = try ShardedCheckpoint.readManifest(path)
            let folder = path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
            sources = m.shards.map { (folder + $0.file, $0.start, $0.count) }
            manifestStep = m.step
        } else {
            sources = [(path, 0, 0)]  // the count is the configuration's, read below
        }
        let ownIndex = rank < sources.count ? rank : 0
        let own = try TensorContainer.open(.checkpoint, path: sources[ownIndex].file)
        guard let state = own.header.training else { throw own.bad("no training state in the checkpoint") }
        var saved: TrainerConfig
        do { saved = try TrainerConfig.parse(state.configJSON) } catch let e as TransFaceError { throw own.bad(e.message) }
        if manifestStep == nil { sources[0].count = saved.numClasses }
        try require(sources.last!.start + sources.last!.count == saved.numClasses,
                    "'\(path)': the checkpoint's shards hold \(sources.last!.start + sources.last!.count) classes, its configuration \(saved.numClasses)")
        try require(state.step == UInt64(manifestStep ?? Int(state.step)), "'\(sources[ownIndex].file)' is of step \(state.step), the manifest of \(manifestStep ?? 0)")
        // The global batch is kept across world sizes.
        let globalBatch = saved.batchSize * sources.count
        try require(globalBatch % world == 0 && globalBatch / world >= 2,
                    "the checkpoint's global batch \(globalBatch) (\(sources.count) × \(saved.batchSize)) cannot be split over \(world) ranks")
        var config = saved
        config.batchSize = globalBatch / world
        if let threads {
            try require((1...256).contains(threads), "threads \(threads) is outside 1...256")
            config.threads = threads
        }
        if communicator == nil { config.distributed = nil }
        if config != saved { config = try TrainerConfig.parse(config.resolvedJSON.text) }  // the stored text follows
        let e = config.model.embeddingSize
        let ownExpected = try stateTensorSizes(config: config, centreRows: sources[ownIndex].count)
        let (model, ownRecords) = try readCheckpointParts(own, state: state, config: config, expected: ownExpected)
        let t = try Trainer(config: config, initialModel: model, communicator: communicator)
        t.learningRateScale = state.learningRateScale
        let centreNames = Set(ownExpected.map(\.name).filter { $0.hasSuffix("partial_fc.weight") })
        for (name, slab, offset, count) in t.stateTensors() where !centreNames.contains(name) {
            try own.read(ownRecords[name]!, into: slab.view(offset, count), verify: true)
        }
        // This rank's class rows, from every saved shard that holds some of them.
        var destinations = [("partial_fc.weight", t.partialFC.weight.base)]
        for (name, slab, offset, _) in t.stateTensors() where centreNames.contains(name) { destinations.append((name, slab.base + offset)) }
        let mine = t.partialFC.classStart..<(t.partialFC.classStart + t.partialFC.numClasses)
        for (i, source) in sources.enumerated() {
            let overlap = mine.clamped(to: source.start..<(source.start + source.count))
            guard !overlap.isEmpty else { continue }
            let opened = i == ownIndex ? own : try TensorContainer.open(.checkpoint, path: source.file)
            guard opened.header.training?.step == state.step else { throw opened.bad("this shard is not of step \(state.step)") }
            let records = i == ownIndex ? ownRecords : try checkRecords(opened, try stateTensorSizes(config: config, centreRows: source.count))
            var rows = [Float](repeating: 0, count: source.count * e)
            for (name, destination) in destinations {
                try rows.withUnsafeMutableBufferPointer { try opened.read(records[name]!, into: $0, verify: true) }
                let from = (overlap.lowerBound - source.start) * e, to = (overlap.lowerBound - mine.lowerBound) * e
                (destination + to).update(from: rows.withUnsafeBufferPointer { $0.baseAddress! + from }, count: overlap.count * e)
            }
        }
        if rank < sources.count {
            try t.restoreStreams(state.rngState, own)
        } else {
            t.reseedStreams(mixing: state.step)
        }
        guard state.step <= UInt64(Int32.max) && state.microStep <= UInt64(Int32.max) << 10 else {
            throw own.bad("saved position (step \(state.step), batch \(state.microStep)) is out of range")
        }
        try t.restorePosition(step: Int(state.step), microStep: Int(state.microStep))
        t.samplerState = state.samplerState
        return t
    }

    /// The records of `expected`, each of its expected size (names are checked before anything is allocated).
    static func checkRecords(_ opened: TensorContainer.Opened, _ expected: [(name: String, count: Int)]) throws -> [String: TensorRecord] {
        let records = try opened.recordsByName()
        for (name, count) in expected {
            guard let r = records[name] else { throw opened.bad("missing tensor \(name)") }
            guard r.length == UInt64(count) * UInt64(r.dtype.size) else {  // readModel/open checked length = shape's
                throw opened.bad("tensor '\(name)' has shape \(r.dims) (\(r.length) bytes), the configuration needs \(count) values")
            }
        }
        return records
    }
}
