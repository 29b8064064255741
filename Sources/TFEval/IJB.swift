import TFCore
import TFData

/// IJB-B / IJB-C 1:1 verification as insightface's `eval_ijbc.py` runs it (FORMATS.md §3),
/// on the "IJB_release" layout: `<root>/loose_crop/<image>`, `<root>/meta/<target>_face_tid_mid.txt`,
/// `<target>_template_pair_label.txt`, `<target>_name_5pts_score.txt` (`target` = ijbc / ijbb).
///
/// Per image: F1 (`flip`) adds the mirrored image's embedding; unless N1 (`normScore`) the sum is
/// L2-normalised; D1 (`detectorScore`) multiplies it by the faceness score. Per template: the
/// mean over the images of each media, summed over the template's medias (sorted ids, as
/// `np.unique`), then L2-normalised. Score of a template pair = cosine. Computed in float64
/// (the official code mixes float32 and float64, so scores agree to ~1e-7, not bit for bit).
public enum IJB {
    public struct Options: Equatable {
        public var flip = true
        public var normScore = false
        public var detectorScore = false
        public init() {}
    }

    public struct Meta {
        public var imageNames: [String]
        public var templates: [Int]
        public var medias: [Int]
        /// 10 values per image (5 points), and the faceness score, from `*_name_5pts_score.txt`.
        public var landmarks: [[Float]]
        public var faceness: [Double]
        public var pairTemplate1: [Int]
        public var pairTemplate2: [Int]
        public var pairLabel: [Bool]
    }

    /// `img_name template_id media_id` per line.
    public static func parseTemplateMedia(_ text: String, path: String = "face_tid_mid.txt") throws -> (names: [String], templates: [Int], medias: [Int]) {
        var names: [String] = [], t: [Int] = [], m: [Int] = []
        for (n, line) in DataFiles.lines(text).enumerated() where !DataFiles.trim(line).isEmpty {
            let f = DataFiles.fields(line)
            guard f.count == 3, let a = Int(f[1]), let b = Int(f[2]) else {
                throw TransFaceError.format("'\(path)' line \(n + 1): expected 'image template_id media_id'")
            }
            names.append(String(f[0])); t.append(a); m.append(b)
        }
        return (names, t, m)
    }

    /// `template_id_1 template_id_2 label` per line.
    public static func parsePairs(_ text: String, path: String = "template_pair_label.txt") throws -> (t1: [Int], t2: [Int], labels: [Bool]) {
        var t1: [Int] = [], t2: [Int] = [], labels: [Bool] = []
        for (n, line) in DataFiles.lines(text).enumerated() where !DataFiles.trim(line).isEmpty {
            let f = DataFiles.fields(line)
            guard f.count == 3, let a = Int(f[0]), let b = Int(f[1]), let l = Int(f[2]), l == 0 || l == 1 else {
                throw TransFaceError.format("'\(path)' line \(n + 1): expected 'template1 template2 label(0/1)'")
            }
            t1.append(a); t2.append(b); labels.append(l == 1)
        }
        return (t1, t2, labels)
    }

    /// `img_name x1 y1 ... x5 y5 faceness` per line.
    public static func parseLandmarks(_ text: String, path: String = "name_5pts_score.txt") throws -> (names: [String], landmarks: [[Float]], faceness: [Double]) {
        var names: [String] = [], lm: [[Float]] = [], score: [Double] = []
        for (n, line) in DataFiles.lines(text).enumerated() where !DataFiles.trim(line).isEmpty {
            let f = DataFiles.fields(line)
            guard f.count == 12 else { throw TransFaceError.format("'\(path)' line \(n + 1): expected 'image x1 y1 ... x5 y5 score' (12 fields), got \(f.count)") }
            var p: [Float] = []
            for v in f[1...10] {
                guard let x = Float(v), x.isFinite else { throw TransFaceError.format("'\(path)' line \(n + 1): '\(v.prefix(20))' is not a coordinate") }
                p.append(x)
            }
            guard let s = Double(f[11]), s.isFinite else { throw TransFaceError.format("'\(path)' line \(n + 1): bad faceness score") }
            names.append(String(f[0])); lm.append(p); score.append(s)
        }
        return (names, lm, score)
    }

    /// "IJBB" / "IJBC": `requested` (any case), or the one whose meta files `root/meta` holds.
    public static func dataset(root: String, requested: String? = nil) throws -> String {
        if let d = requested {
            let u = d.uppercased()
            try require(u == "IJBB" || u == "IJBC", "dataset '\(d.prefix(40))' is neither \"IJBB\" nor \"IJBC\"")
            return u
        }
        let found = ["IJBB", "IJBC"].filter { DataFiles.isFile(root + "/meta/" + $0.lowercased() + "_face_tid_mid.txt") }
        guard found.count == 1 else {
            if found.isEmpty {
                throw TransFaceError.io("'\(root)/meta' holds neither ijbb_face_tid_mid.txt nor ijbc_face_tid_mid.txt: not an IJB folder")
            }
            throw TransFaceError.invalidArgument("'\(root)/meta' holds both IJB-B and IJB-C meta files: pass dataset \"IJBB\" or \"IJBC\"")
        }
        return found[0]
    }

    /// Reads the three meta files of `<root>/meta` for `target` ("IJBC" or "IJBB", any case).
    public static func loadMeta(root: String, target: String) throws -> Meta {
        let t = target.lowercased()
        let meta = root + "/meta/" + t
        let (names, templates, medias) = try parseTemplateMedia(try DataFiles.readText(meta + "_face_tid_mid.txt"), path: meta + "_face_tid_mid.txt")
        let (t1, t2, labels) = try parsePairs(try DataFiles.readText(meta + "_template_pair_label.txt"), path: meta + "_template_pair_label.txt")
        let (lnames, lm, score) = try parseLandmarks(try DataFiles.readText(meta + "_name_5pts_score.txt"), path: meta + "_name_5pts_score.txt")
        guard lnames == names else {
            throw TransFaceError.format("\(meta)_name_5pts_score.txt does not list the images of \(meta)_face_tid_mid.txt in the same order")
        }
        return Meta(imageNames: names, templates: templates, medias: medias, landmarks: lm, faceness: score,
                    pairTemplate1: t1, pairTemplate2: t2, pairLabel: labels)
    }

    /// Per-image features (`count × dim`; `mirrored` the flipped images' raw embeddings) →
    /// sorted template ids and their L2-normalised features (`templates × dim`, float64).
    public static func templateFeatures(original: [Float], mirrored: [Float]?, dim: Int, templates: [Int], medias: [Int],
                                        faceness: [Double]?, options: Options) throws -> (ids: [Int], features: [Double]) {
        let n = templates.count
        try require(dim >= 1 && medias.count == n && original.count == n * dim, "features (\(original.count) values) must be \(n) images × \(dim)")
        if options.flip {
            guard let m = mirrored, m.count == n * dim else { throw TransFaceError.invalidArgument("F1 (flip) needs the mirrored images' embeddings") }
        }
        if options.detectorScore {
            guard let f = faceness, f.count == n else { throw TransFaceError.invalidArgument("D1 needs a faceness score per image") }
        }
        // image features, computed when their template is pooled (each image belongs to one
        // template): no N x dim float64 copy of the features is made
        var feature = [Double](repeating: 0, count: dim)
        func imageFeature(_ i: Int) throws {
            var norm = 0.0
            for j in 0..<dim {
                var v = Float(original[i * dim + j])
                if options.flip { v += mirrored![i * dim + j] }
                feature[j] = Double(v)
                norm += Double(v) * Double(v)
            }
            norm = norm.squareRoot()
            if !options.normScore {
                guard norm > 0 && norm.isFinite else { throw TransFaceError(.numeric, "image \(i) has a zero or non-finite embedding") }
                for j in 0..<dim { feature[j] /= norm }
            }
            if options.detectorScore {
                for j in 0..<dim { feature[j] *= faceness![i] }
            }
        }
        // group by template, then media
        var byTemplate: [Int: [Int]] = [:]
        for i in 0..<n { byTemplate[templates[i], default: []].append(i) }
        let ids = byTemplate.keys.sorted()
        var out = [Double](repeating: 0, count: ids.count * dim)
        var mediaSum = [Double](repeating: 0, count: dim)
        for (k, t) in ids.enumerated() {
            var byMedia: [Int: [Int]] = [:]
            for i in byTemplate[t]! { byMedia[medias[i], default: []].append(i) }
            for m in byMedia.keys.sorted() {
                let members = byMedia[m]!
                for j in 0..<dim { mediaSum[j] = 0 }
                for i in members {
                    try imageFeature(i)
                    for j in 0..<dim { mediaSum[j] += feature[j] }
                }
                for j in 0..<dim { out[k * dim + j] += mediaSum[j] / Double(members.count) }
            }
            var norm = 0.0
            for j in 0..<dim { norm += out[k * dim + j] * out[k * dim + j] }
            norm = norm.squareRoot()
            // sklearn normalize leaves a zero row as it is
            if norm > 0 { for j in 0..<dim { out[k * dim + j] /= norm } }
        }
        return (ids, out)
    }

    /// Cosine score of each template pair.
    public static func scores(ids: [Int], features: [Double], dim: Int, t1: [Int], t2: [Int]) throws -> [Double] {
        var row: [Int: Int] = [:]
        for (k, t) in ids.enumerated() { row[t] = k }
        try require(t1.count == t2.count, "pair lists differ in length")
        return try zip(t1, t2).map { a, b in
            guard let ra = row[a], let rb = row[b] else {
                throw TransFaceError.format("template pair (\(a), \(b)) names a template without images")
            }
            var s = 0.0
            for j in 0..<dim { s += features[ra * dim + j] * features[rb * dim + j] }
            return s
        }
    }

    /// The whole protocol from per-image embeddings: ROC and TAR at `fars` (closest-FPR
    /// convention of `eval_ijbc.py`).
    public static func evaluate(meta: Meta, original: [Float], mirrored: [Float]?, dim: Int, options: Options = Options(),
                                fars: [Double] = ROCCurve.standardFARs, name: String = "model") throws -> TARReport {
        let (ids, feats) = try templateFeatures(original: original, mirrored: mirrored, dim: dim, templates: meta.templates,
                                                medias: meta.medias, faceness: meta.faceness, options: options)
        let s = try scores(ids: ids, features: feats, dim: dim, t1: meta.pairTemplate1, t2: meta.pairTemplate2)
        return try TARReport(name: name, scores: s, labels: meta.pairLabel, fars: fars)
    }

    /// The method name insightface prints: "F1N0D0"-style flags become e.g. "model (F1)".
    public static func methodName(_ base: String, _ o: Options) -> String {
        var flags: [String] = []
        if o.flip { flags.append("F1") }
        if o.normScore { flags.append("N1") }
        if o.detectorScore { flags.append("D1") }
        return flags.isEmpty ? base : "\(base) (\(flags.joined(separator: ",")))"
    }
}
