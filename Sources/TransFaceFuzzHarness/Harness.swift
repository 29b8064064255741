import TFConvert
import TFCore
import TFData
import TFGallery
import TFImage
import TFModel
import TFTrain

#if canImport(Glibc)
import Glibc
#endif

/// The fuzzing harnesses of every parser that reads outside input. Each takes arbitrary bytes
/// and either accepts them or refuses them with a `TransFaceError`; anything else (a trap, a
/// sanitizer report, another error type) is a bug. The same code runs under libFuzzer
/// (`transface-fuzz` built with `-DFUZZING`), in the regression replayer and in the tests.
public enum FuzzHarness: String, CaseIterable, Sendable {
    /// `.tfm` model files: `ModelFile.load` (TensorContainer + ModelHeader + layout checks), or
    /// `DetectorModelFile` when the header says detector.
    case model
    /// Training checkpoints: `Trainer.resume`.
    case checkpoint
    /// JPEG / PNG / PGM / PPM: `ImageDecoder.info` and `decode`, strict and damage-tolerant.
    case image
    /// RecordIO `.rec` + `.idx` + `property`: `RecordIODataset` and every record in it.
    case recordio
    /// Verification `.bin` pickles: `VerificationBin.decode` (the safe pickle reader).
    case pickle
    /// Text files: pairs (LFW and TSV), landmark tables, image lists (both formats), `property`.
    case text
    /// Trainer configuration JSON: `TrainerConfig.parse`.
    case config
    /// torch.save files, legacy and zip: `TorchFile.load` (the safe unpickler with torch's
    /// allowlist, storage bounds) and every tensor read.
    case torch
    /// Gallery files: `Gallery.open` read-only (header, record log, torn-tail rules), then `list` and `search`.
    case gallery
    /// hnswlib graph files beside a gallery (`.hnsw`): the shim's checked loader (dimension 8,
    /// M 4), then a search and the live labels.
    case hnsw

    /// What a harness did with one input.
    public enum Outcome: Equatable, Sendable {
        case accepted(String)
        case refused(TransFaceError)
    }

    /// An error that is not a `TransFaceError`: every failure must be one.
    public struct UnexpectedError: Error, CustomStringConvertible {
        public let error: Error
        public var description: String { "not a TransFaceError: \(type(of: error)): \(error)" }
    }

    /// Runs one input. Throws `UnexpectedError` only for an error of another type.
    public func run(_ data: [UInt8]) throws -> Outcome {
        do {
            return .accepted(try body(data))
        } catch let e as TransFaceError {
            return .refused(e)
        } catch {
            throw UnexpectedError(error: error)
        }
    }

    /// Largest input worth fuzzing (libFuzzer `-max_len`); seeds are chosen below it.
    public var maxLength: Int {
        switch self {
        case .model, .checkpoint: return 32 << 10
        case .image: return 64 << 10
        case .recordio: return 16 << 10
        case .pickle, .torch: return 64 << 10
        case .text, .config: return 8 << 10
        case .gallery, .hnsw: return 16 << 10
        }
    }

    private func body(_ data: [UInt8]) throws -> String {
        switch self {
        case .model:
            let path = try FuzzScratch.shared.write("model.tfm", FuzzHarness.fixHeaderCRC(data, magic: TensorContainer.Kind.model.magic))
            let opened = try TensorContainer.open(.model, path: path)
            if opened.header.kind == .detector {
                return "detector, \(try DetectorModelFile.read(opened).tensors.count) tensors"
            }
            let m = try ModelFile.readModel(opened, extraTensors: [], options: ModelFile.LoadOptions())
            return "model \(m.config.arch) D\(m.config.embedDim) depth \(m.config.depth), \(m.layout.totalCount) weights"
        case .checkpoint:
            let path = try FuzzScratch.shared.write("run.tfc", FuzzHarness.fixHeaderCRC(data, magic: TensorContainer.Kind.checkpoint.magic))
            let t = try Trainer.resume(from: path, threads: 1)
            return "checkpoint at step \(t.step), \(t.config.numClasses) classes"
        case .image:
            return try FuzzHarness.image(data)
        case .recordio:
            return try FuzzHarness.recordIO(data)
        case .pickle:
            let bin = try VerificationBin.decode(data, what: "fuzz.bin")
            return "\(bin.pairs) pairs"
        case .text:
            return try FuzzHarness.text(data)
        case .config:
            let c = try TrainerConfig.parse(String(decoding: data, as: UTF8.self))
            return "config \(c.model.arch), \(c.numClasses) classes, batch \(c.batchSize)"
        case .torch:
            return try FuzzHarness.torch(try TorchFile.load(path: try FuzzScratch.shared.write("torch.pt", data)))
        case .gallery:
            return try FuzzHarness.gallery(data)
        case .hnsw:
            return try HNSWGraphFile.inspect(path: try FuzzScratch.shared.write("graph.hnsw", data), dim: 8, m: 4)
        }
    }

    /// Opens the bytes as a gallery (CRCs recomputed, see `fixGalleryCRCs`), lists it and searches
    /// it. Bytes from the first "TFGSNAP1" on are the snapshot beside it (its CRCs and checksums
    /// recomputed for the log: `resealGallerySnapshot`).
    static func gallery(_ data: [UInt8]) throws -> String {
        let magic = Array("TFGSNAP1".utf8)
        let split = data.count < 8 ? nil : (0...(data.count - 8)).first { data[$0] == magic[0] && Array(data[$0..<($0 + 8)]) == magic }
        let log = fixGalleryCRCs(Array(data[0..<(split ?? data.count)]))
        let path = try FuzzScratch.shared.write("gallery.tfg", log)
        if let split {
            _ = try FuzzScratch.shared.write("gallery.tfg.snap", resealGallerySnapshot(Array(data[split...]), log: log))
        } else {
            FuzzScratch.shared.remove("gallery.tfg.snap")
        }
        let g = try Gallery.open(path: path, fingerprint: nil, options: GalleryOptions(readOnly: true))
        let identities = try g.list()
        let dim = g.fingerprint.embeddingSize
        let hits = try g.search(queries: (0..<(2 * dim)).map { Float($0 % 7) - 2.5 }, k: 3, threshold: 0.5)
        return "gallery \(g.fingerprint), \(g.count) entries, \(identities.count) identities, \(hits[0].count) hits, \(g.discardedTailBytes) torn bytes"
            + (g.snapshotEnd > 0 ? ", snapshot of \(g.snapshotEnd) bytes" : split == nil ? "" : ", snapshot refused")
    }

    /// Gallery headers and records carry CRCs a fuzzer would almost never match: the harness
    /// recomputes the header's and those of every record frame it can walk to (a frame whose
    /// length runs past the end keeps its CRCs), so the fuzzer reaches the decoders. The CRC
    /// checks themselves are single compares, covered by TFGalleryTests.
    static func fixGalleryCRCs(_ data: [UInt8]) -> [UInt8] {
        var out = data
        func u32(_ i: Int) -> Int { Int(out[i]) | Int(out[i + 1]) << 8 | Int(out[i + 2]) << 16 | Int(out[i + 3]) << 24 }
        func put(_ i: Int, _ v: UInt32) { for b in 0..<4 { out[i + b] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(b))) } }
        guard out.count >= 16, Array(out[0..<8]) == Array("TFGALLRY".utf8) else { return data }
        let headerSize = u32(12)
        guard headerSize >= 8, headerSize <= out.count else { return out }
        put(headerSize - 4, out[0..<(headerSize - 4)].withUnsafeBytes { crc32($0) })
        var p = headerSize
        while p + 20 <= out.count, Array(out[p..<(p + 4)]) == Array("TFGR".utf8) {
            let length = u32(p + 8)
            guard p + 20 + length <= out.count else { break }
            put(p + 12, out[(p + 20)..<(p + 20 + length)].withUnsafeBytes { crc32($0) })
            put(p + 16, out[p..<(p + 16)].withUnsafeBytes { crc32($0) })
            p += 20 + length
        }
        return out
    }

    /// Model and checkpoint files carry a CRC of their header; a fuzzer would almost never get
    /// past it, so the harness recomputes it (the mismatch check itself is a single compare, and
    /// tensor CRCs stay as the input has them).
    static func fixHeaderCRC(_ data: [UInt8], magic: [UInt8]) -> [UInt8] {
        guard data.count >= TensorContainer.preambleSize, Array(data[0..<8]) == magic else { return data }
        var length: UInt64 = 0
        for i in (16..<24).reversed() { length = length << 8 | UInt64(data[i]) }
        guard length > 0, length <= UInt64(data.count - TensorContainer.preambleSize) else { return data }
        var out = data
        let crc = data[24..<(24 + Int(length))].withUnsafeBytes { crc32($0) }
        for i in 0..<4 { out[12 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
        return out
    }

    /// Reads every tensor of an unpickled torch.save object (dicts, nested).
    static func torch(_ root: Pickle.Value) throws -> String {
        var tensors = 0, values = 0
        func visit(_ v: Pickle.Value) throws {
            switch v {
            case .dict(let d): for item in d.items { try visit(item.value) }
            case .object(let t as SourceTensor): tensors += 1; values += try t.load().count / max(SourceTensor.itemSize(t.dtype), 1)
            default: break
            }
        }
        try visit(root)
        return "\(root.kind) with \(tensors) tensors, \(values) values"
    }

    /// Header, then a strict decode, then (for damaged data) a tolerant one. A caller-set pixel
    /// limit keeps allocations small, as a service decoding uploads would set one.
    static func image(_ data: [UInt8]) throws -> String {
        let strict = DecodeOptions(maxPixels: 1 << 22, acceptDamaged: false)
        let info = try data.withUnsafeBytes { try ImageDecoder.info($0, options: strict) }
        do {
            let img = try ImageDecoder.decode(data, options: strict)
            return "\(info.format) \(img.width)x\(img.height)"
        } catch let e as TransFaceError {
            // the damage-tolerant path; the strict error is the outcome either way
            _ = try? ImageDecoder.decode(data, options: DecodeOptions(maxPixels: 1 << 22, acceptDamaged: true))
            throw e
        }
    }

    /// Input framing (see `FuzzSeeds.recordIOInput`): `u16 idxLength, idx bytes, u16
    /// propertyLength, property bytes, rec bytes`; a length of 0xFFFF means "no such file" (the
    /// `.rec` is then scanned, or has no property file).
    static func recordIO(_ data: [UInt8]) throws -> String {
        var p = 0
        func part() -> [UInt8]? {
            guard data.count - p >= 2 else { p = data.count; return nil }
            let n = Int(data[p]) | Int(data[p + 1]) << 8
            p += 2
            if n == 0xFFFF { return nil }
            let end = min(data.count, p + n)
            defer { p = end }
            return Array(data[p..<end])
        }
        let idx = part(), property = part()
        let rec = Array(data[p...])
        let scratch = FuzzScratch.shared
        let dir = try scratch.folder("rec")
        _ = try scratch.write("rec/train.rec", rec)
        if let idx { _ = try scratch.write("rec/train.idx", idx) } else { scratch.remove("rec/train.idx") }
        if let property { _ = try scratch.write("rec/property", property) } else { scratch.remove("rec/property") }
        let ds = try RecordIODataset(path: dir)
        var readable = 0
        for i in 0..<min(ds.count, 256) {
            if let s = try? ds.sample(at: i) { readable += 1; _ = s.label }
        }
        let ranges = try ds.identityRanges()
        return "\(ds.count) images (\(readable) readable), \(ranges.count) identities, \(ds.numClasses.map(String.init) ?? "?") classes"
    }

    /// Every text parser on the same bytes (they are cheap and share the line/field splitter).
    static func text(_ data: [UInt8]) throws -> String {
        let scratch = FuzzScratch.shared
        let path = try scratch.write("list/file.txt", data)
        let text = String(decoding: data, as: UTF8.self)
        var accepted: [String] = []
        var firstError: TransFaceError?
        func attempt(_ name: String, _ body: () throws -> Int) throws {
            do { accepted.append("\(name) \(try body())") } catch let e as TransFaceError { firstError = firstError ?? e }
        }
        try attempt("pairs") { try PairList.load(path).count }
        try attempt("orl pairs") { try PairList.load(path, naming: .orl).count }
        try attempt("tsv pairs") { try PairList.tsv(text).count }
        try attempt("landmarks") { try LandmarkTable(path: path).count }
        try attempt("list") { try LabeledImageList.listFile(path).count }
        try attempt("im2rec list") { try LabeledImageList.listFile(path, format: .im2rec).count }
        try attempt("property") { try DatasetProperty(text: text).numClasses }
        try attempt("idx") { try RecordIOIndex(text: text, recordFileSize: 1 << 20).count }
        if accepted.isEmpty, let firstError { throw firstError }
        return accepted.joined(separator: ", ")
    }
}

/// Files the harnesses write their inputs to: a private folder under /dev/shm (or /tmp), or
/// `$TRANSFACE_FUZZ_SCRATCH`. Removed at exit (libFuzzer ends without running `atexit`).
public final class FuzzScratch: @unchecked Sendable {
    public static let shared = FuzzScratch()
    public let root: String

    private init() {
        if let given = getenv("TRANSFACE_FUZZ_SCRATCH") {  // run.sh: removed after the run
            root = String(cString: given)
        } else {
            let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
            root = "\(base)/transface-fuzz-\(getpid())"
        }
        mkdir(root, 0o700)
        atexit { FuzzScratch.shared.removeAll() }
    }

    /// Writes `bytes` to `root/name` (creating its folder); returns the path.
    public func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        if let slash = name.lastIndex(of: "/") { _ = try folder(String(name[..<slash])) }
        let path = root + "/" + name
        guard let f = fopen(path, "wb") else { throw TransFaceError.io("fuzz scratch: cannot create \(path)") }
        defer { fclose(f) }
        guard bytes.isEmpty || fwrite(bytes, 1, bytes.count, f) == bytes.count else { throw TransFaceError.io("fuzz scratch: cannot write \(path)") }
        return path
    }

    public func folder(_ name: String) throws -> String {
        let path = root + "/" + name
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw TransFaceError.io("fuzz scratch: cannot create \(path)") }
        return path
    }

    public func remove(_ name: String) { unlink(root + "/" + name) }

    func removeAll() {
        for sub in ["rec/train.rec", "rec/train.idx", "rec/property", "list/file.txt", "model.tfm", "run.tfc", "torch.pt",
                    "gallery.tfg", "seed.tfg", "seed.tfg.lock", "graph.hnsw", "seed.hnsw"] { unlink(root + "/" + sub) }
        for sub in ["rec", "list", ""] { rmdir(sub.isEmpty ? root : root + "/" + sub) }
    }
}
