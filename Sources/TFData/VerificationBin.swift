import TFCore

/// An InsightFace verification set (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, ...): a pickle of
/// `(bins, issame_list)` (FORMATS.md §2). `images[2i]` and `images[2i+1]` are pair `i`, stored
/// encoded (JPEG bytes as `lfw2pack` reads them, or the numpy uint8 arrays of
/// `cv2.imencode` that `build_eval_pack` stores).
public struct VerificationBin: Equatable {
    public var images: [[UInt8]]
    public var issame: [Bool]

    public init(images: [[UInt8]], issame: [Bool]) throws {
        guard images.count == 2 * issame.count else {
            throw TransFaceError.invalidArgument("a verification set needs 2 images per pair: \(images.count) images for \(issame.count) pairs")
        }
        self.images = images; self.issame = issame
    }

    public var pairs: Int { issame.count }

    /// Reads a `.bin` file with the safe pickle reader (never executes anything).
    public static func read(path: String, limits: Pickle.Limits = Pickle.Limits()) throws -> VerificationBin {
        try decode(try DataFiles.readAll(path), what: "'\(path)'", limits: limits)
    }

    public static func decode(_ bytes: [UInt8], what: String = ".bin", limits: Pickle.Limits = Pickle.Limits()) throws -> VerificationBin {
        let root = try Pickle.load(bytes, limits: limits, what: what)
        let parts: [Pickle.Value]
        switch root {
        case .tuple(let t): parts = t
        case .list(let l): parts = l.items
        default: throw TransFaceError.format("\(what): expected a pickled (bins, issame_list) tuple, got a \(root.kind)")
        }
        guard parts.count == 2 else { throw TransFaceError.format("\(what): expected (bins, issame_list), got \(parts.count) items") }
        let bins = try sequence(parts[0], what: "\(what) bins")
        var images: [[UInt8]] = []
        images.reserveCapacity(bins.count)
        for (i, v) in bins.enumerated() {
            switch v {
            case .bytes(let b): images.append(b)
            case .array(let a) where a.dtype == "u1" || a.dtype == "i1": images.append(a.data)
            default: throw TransFaceError.format("\(what): bins[\(i)] is a \(v.kind), not encoded image bytes")
            }
        }
        var issame: [Bool] = []
        switch parts[1] {
        case .array(let a):
            issame = a.data.map { $0 != 0 }
        default:
            for (i, v) in try sequence(parts[1], what: "\(what) issame_list").enumerated() {
                switch v {
                case .bool(let b): issame.append(b)
                case .int(let x) where x == 0 || x == 1: issame.append(x == 1)
                default: throw TransFaceError.format("\(what): issame_list[\(i)] is a \(v.kind), not a bool")
                }
            }
        }
        guard images.count == 2 * issame.count else {
            throw TransFaceError.format("\(what): \(images.count) images for \(issame.count) pairs (need 2 per pair)")
        }
        return try VerificationBin(images: images, issame: issame)
    }

    static func sequence(_ v: Pickle.Value, what: String) throws -> [Pickle.Value] {
        switch v {
        case .list(let l): return l.items
        case .tuple(let t): return t
        default: throw TransFaceError.format("\(what) is a \(v.kind), not a list")
        }
    }

    /// The pickle bytes, as `pickle.dump((bins, issame_list), f, protocol=p)` writes them
    /// (4 = Python 3.4-3.7's HIGHEST_PROTOCOL; 2 = Python 2's, with `str` opcodes).
    public func encoded(protocol proto: Int = 4) throws -> [UInt8] {
        try Pickle.dumpBinPair(images, issame, protocol: proto)
    }

    /// Writes the file atomically.
    public func write(path: String, protocol proto: Int = 4) throws {
        let bytes = try encoded(protocol: proto)
        let w = try AtomicFileWriter(path: path)
        try w.write(bytes)
        try w.commit()
    }

    /// Builds a set from a pairs list the way `lfw2pack.py` does: each pair's two files are
    /// read verbatim (no re-encoding), in pair order. Paths are resolved under `root`.
    public static func fromPairs(_ pairs: PairList, root: String) throws -> VerificationBin {
        var images: [[UInt8]] = []
        images.reserveCapacity(2 * pairs.count)
        var cache: [String: [UInt8]] = [:]
        for (i, p) in pairs.pairs.enumerated() {
            for rel in [p.path1, p.path2] {
                if let b = cache[rel] { images.append(b); continue }
                let b = try DataFiles.readAll(try DataFiles.resolve(Substring(rel), under: root, what: "pair \(i)"), limit: 1 << 30)
                cache[rel] = b
                images.append(b)
            }
        }
        return try VerificationBin(images: images, issame: pairs.issame)
    }
}
