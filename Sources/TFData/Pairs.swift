import TFCore

/// One verification pair: two image paths (relative to the image root) and whether they show
/// the same person.
public struct VerificationPair: Equatable {
    public var path1: String
    public var path2: String
    public var same: Bool
    public init(path1: String, path2: String, same: Bool) { self.path1 = path1; self.path2 = path2; self.same = same }
}

/// How the `name number` entries of an LFW-style pairs file become paths: a template where
/// `{name}` is the identity, `{num}` the number as written and `{num4}` it zero-padded to 4 digits.
public struct PairNaming: Equatable {
    public var template: String
    public init(_ template: String) { self.template = template }

    /// LFW: `Aaron_Peirsol/Aaron_Peirsol_0001.jpg`.
    public static let lfw = PairNaming("{name}/{name}_{num4}.jpg")
    /// The ORL pairs of `../shared/data/orl_faces/splits/pairs_test.txt`: `s31/1.pgm`.
    public static let orl = PairNaming("{name}/{num}.pgm")

    public func path(name: Substring, number: Int) -> String {
        var num4 = String(number)
        while num4.count < 4 { num4 = "0" + num4 }
        return template.replacingAll("{name}", with: String(name)).replacingAll("{num4}", with: num4)
            .replacingAll("{num}", with: String(number))
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = "", rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Substring.Index>? {
        let t = Array(target.utf8)
        let u = self.utf8
        guard !t.isEmpty, u.count >= t.count else { return nil }
        var i = u.startIndex
        while i != u.endIndex {
            var j = i, k = 0
            while k < t.count, j != u.endIndex, u[j] == t[k] { j = u.index(after: j); k += 1 }
            if k == t.count { return i..<j }
            i = u.index(after: i)
        }
        return nil
    }
}

/// A list of verification pairs, from an LFW `pairs.txt`-style file or a TSV with columns
/// `path1`, `path2`, `same` (the `../shared/data/*/splits/*_pairs.tsv` form).
public struct PairList: Equatable {
    public var pairs: [VerificationPair]
    /// LFW View 2 files: the number of sets (10) and pairs of each kind per set (300), sets laid
    /// out one after the other, same pairs first. View 1 files (`pairsDevTest.txt`): 1 set.
    public var sets: Int?
    public var perSet: Int?

    public init(pairs: [VerificationPair], sets: Int? = nil, perSet: Int? = nil) {
        self.pairs = pairs; self.sets = sets; self.perSet = perSet
    }

    public var count: Int { pairs.count }
    public var issame: [Bool] { pairs.map(\.same) }

    /// Reads a pairs file, recognising the form from its first line: digits only → LFW
    /// `pairs.txt` form (paths made with `naming`); else a TSV with a header row.
    public static func load(_ path: String, naming: PairNaming = .lfw) throws -> PairList {
        let text = try DataFiles.readText(path, limit: 1 << 30)
        let first = DataFiles.lines(text).first.map { DataFiles.fields($0) } ?? []
        if !first.isEmpty && first.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
            return try lfw(text, naming: naming, path: path)
        }
        return try tsv(text, path: path)
    }

    /// LFW `pairs.txt` (View 2: first line `sets n`, then per set n lines `name i j` and n lines
    /// `name1 i name2 j`) or View 1 (`pairsDevTrain/DevTest.txt`: first line `n`, n same then n
    /// different). The layout is checked line by line.
    public static func lfw(_ text: String, naming: PairNaming = .lfw, path: String = "pairs.txt") throws -> PairList {
        let lines = DataFiles.lines(text).filter { !DataFiles.trim($0).isEmpty }
        guard let head = lines.first else { throw TransFaceError.format("'\(path)' is empty") }
        let h = DataFiles.fields(head).compactMap { Int($0) }
        let sets: Int, n: Int
        switch h.count {
        case 1: sets = 1; n = h[0]
        case 2: sets = h[0]; n = h[1]
        default: throw TransFaceError.format("'\(path)': first line must be 'pairs' or 'sets pairs', got '\(head.prefix(40))'")
        }
        guard sets >= 1, n >= 1, sets <= 1_000_000, n <= 100_000_000 / sets else {
            throw TransFaceError.format("'\(path)': header \(sets) set(s) of \(n) pairs is not usable")
        }
        guard lines.count - 1 == sets * 2 * n else {
            throw TransFaceError.format("'\(path)': header announces \(sets) × \(2 * n) pairs, the file has \(lines.count - 1) pair lines")
        }
        var pairs: [VerificationPair] = []
        pairs.reserveCapacity(sets * 2 * n)
        for (k, line) in lines.dropFirst().enumerated() {
            let f = DataFiles.fields(line)
            let expectSame = k % (2 * n) < n
            func number(_ s: Substring) throws -> Int {
                guard let v = Int(s), v >= 0 else { throw TransFaceError.format("'\(path)' line \(k + 2): '\(s)' is not an image number") }
                return v
            }
            if expectSame {
                guard f.count == 3 else { throw TransFaceError.format("'\(path)' line \(k + 2): expected a same-person pair 'name i j'") }
                pairs.append(VerificationPair(path1: naming.path(name: f[0], number: try number(f[1])),
                                              path2: naming.path(name: f[0], number: try number(f[2])), same: true))
            } else {
                guard f.count == 4 else { throw TransFaceError.format("'\(path)' line \(k + 2): expected a different-person pair 'name1 i name2 j'") }
                pairs.append(VerificationPair(path1: naming.path(name: f[0], number: try number(f[1])),
                                              path2: naming.path(name: f[2], number: try number(f[3])), same: false))
            }
        }
        return PairList(pairs: pairs, sets: sets, perSet: n)
    }

    /// A TSV with a header naming the columns `path1`, `path2`, `same` (1/0 or true/false);
    /// other columns (`pair_index`) are ignored. Rows keep the file's order.
    public static func tsv(_ text: String, path: String = "pairs.tsv") throws -> PairList {
        let lines = DataFiles.lines(text)
        guard let head = lines.first else { throw TransFaceError.format("'\(path)' is empty") }
        let cols = DataFiles.fields(head).map(String.init)
        guard let c1 = cols.firstIndex(of: "path1"), let c2 = cols.firstIndex(of: "path2"), let cs = cols.firstIndex(of: "same") else {
            throw TransFaceError.format("'\(path)': header must name the columns path1, path2 and same, got \(cols.prefix(8))")
        }
        var pairs: [VerificationPair] = []
        for (k, line) in lines.dropFirst().enumerated() where !DataFiles.trim(line).isEmpty {
            let f = DataFiles.fields(line)
            guard f.count == cols.count else { throw TransFaceError.format("'\(path)' line \(k + 2): \(f.count) columns, the header has \(cols.count)") }
            let same: Bool
            switch f[cs].lowercased() {
            case "1", "true", "yes": same = true
            case "0", "false", "no": same = false
            default: throw TransFaceError.format("'\(path)' line \(k + 2): same = '\(f[cs].prefix(20))' is not 1/0")
            }
            pairs.append(VerificationPair(path1: String(f[c1]), path2: String(f[c2]), same: same))
        }
        guard !pairs.isEmpty else { throw TransFaceError.format("'\(path)' lists no pairs") }
        return PairList(pairs: pairs)
    }

    /// The distinct image paths in first-appearance order, and for each pair the positions of
    /// its two images in that list.
    public func uniqueImages() -> (paths: [String], pairIndices: [(Int, Int)]) {
        var position: [String: Int] = [:], paths: [String] = []
        func index(_ p: String) -> Int {
            if let i = position[p] { return i }
            position[p] = paths.count; paths.append(p)
            return paths.count - 1
        }
        let indices = pairs.map { (index($0.path1), index($0.path2)) }
        return (paths, indices)
    }
}

/// Five facial landmarks per image (ArcFace order: image-left eye, image-right eye, nose tip,
/// image-left mouth corner, image-right mouth corner), from a TSV with a header naming `path`,
/// `leye_x leye_y reye_x reye_y nose_x nose_y lmouth_x lmouth_y rmouth_x rmouth_y` and
/// optionally `source` (`../shared/data/lfw/landmarks/included_5pt.tsv`,
/// `orl_faces/landmarks_mtcnn_5pt.tsv`), or a header-less `path x1 y1 ... x5 y5` file
/// (`lfw_landmark.txt`). A path may have several rows from different sources.
public struct LandmarkTable {
    public struct Entry: Equatable {
        public var source: String
        public var points: [Float]  // 10 values: x1, y1, ..., x5, y5
    }

    public private(set) var entries: [String: [Entry]] = [:]
    public private(set) var sources: [String] = []

    public static let columns = ["leye_x", "leye_y", "reye_x", "reye_y", "nose_x", "nose_y",
                                 "lmouth_x", "lmouth_y", "rmouth_x", "rmouth_y"]

    public init() {}

    public init(path: String) throws { try self.init(text: try DataFiles.readText(path, limit: 1 << 30), path: path) }

    public init(text: String, path: String = "landmarks.tsv") throws {
        let lines = DataFiles.lines(text)
        guard let head = lines.first else { throw TransFaceError.format("'\(path)' is empty") }
        let cols = DataFiles.fields(head).map(String.init)
        var pathCol = 0, sourceCol: Int? = nil, pointCols = Array(1...10), body = lines[...]
        if let p = cols.firstIndex(of: "path") {
            pathCol = p
            sourceCol = cols.firstIndex(of: "source")
            pointCols = try LandmarkTable.columns.map { name in
                guard let c = cols.firstIndex(of: name) else { throw TransFaceError.format("'\(path)': header has no column '\(name)'") }
                return c
            }
            body = lines.dropFirst()
        } else if cols.count != 11 {
            throw TransFaceError.format("'\(path)': expected a header naming path and the landmark columns, or 11 columns 'path x1 y1 ... x5 y5'")
        }
        let needed = max(pathCol, sourceCol ?? 0, pointCols.max()!) + 1
        for (k, line) in body.enumerated() where !DataFiles.trim(line).isEmpty {
            let f = DataFiles.fields(line)
            let lineNumber = k + 1 + (lines.count - body.count)
            guard f.count >= needed else { throw TransFaceError.format("'\(path)' line \(lineNumber): \(f.count) columns, need \(needed)") }
            var points: [Float] = []
            for c in pointCols {
                guard let v = Float(f[c]), v.isFinite else { throw TransFaceError.format("'\(path)' line \(lineNumber): '\(f[c].prefix(20))' is not a coordinate") }
                points.append(v)
            }
            let source = sourceCol.map { String(f[$0]) } ?? ""
            if !sources.contains(source) { sources.append(source) }
            entries[String(f[pathCol]), default: []].append(Entry(source: source, points: points))
        }
    }

    public var count: Int { entries.count }

    /// The landmarks of `path`: the first row whose source is earliest in `preferring`, else
    /// the first row listed for the path.
    public func points(for path: String, preferring: [String] = []) -> [Float]? {
        guard let rows = entries[path], !rows.isEmpty else { return nil }
        for s in preferring { if let e = rows.first(where: { $0.source == s }) { return e.points } }
        return rows[0].points
    }
}
