import TFCore
import TFData
@testable import TFEval
import TFTestSupport
import XCTest

/// A stand-in embedding source: each image's embedding is a seeded function of its bytes (and
/// the mirror image's of the bytes plus a marker), so results are checkable without a model.
final class HashEmbeddingSource: FaceEmbeddingSource {
    let embeddingSize: Int
    private(set) var calls = 0
    private(set) var landmarksSeen = 0

    init(dim: Int = 16) { embeddingSize = dim }

    static func vector(_ bytes: [UInt8], mirrored: Bool, dim: Int) -> [Float] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        // a sample of the bytes keeps debug-build tests fast (JPEG files differ near their end)
        let picked = bytes.count <= 512 ? bytes[...] : bytes[(bytes.count - 256)...]
        for b in picked { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h ^= UInt64(bytes.count)
        var rng = SeededRNG(seed: h, stream: mirrored ? 1 : 0)
        return (0..<dim).map { _ in Float(rng.normal()) * 3 + (mirrored ? 0.5 : 0) }
    }

    func embed(images: [[UInt8]], names: [String], landmarks: [[Float]?], mirrored: Bool) throws -> (original: [Float], mirrored: [Float]?) {
        calls += 1
        landmarksSeen += landmarks.compactMap { $0 }.count
        let o = images.flatMap { Self.vector($0, mirrored: false, dim: embeddingSize) }
        return (o, mirrored ? images.flatMap { Self.vector($0, mirrored: true, dim: embeddingSize) } : nil)
    }
}

final class IJBTests: XCTestCase {
    /// A miniature IJB-C folder: 40 images in 8 templates with several medias, all template pairs.
    static func makeFolder(_ root: String) throws -> (names: [String], templates: [Int], medias: [Int], faceness: [Double]) {
        try DataFiles.makeDirectories(root + "/loose_crop")
        try DataFiles.makeDirectories(root + "/meta")
        var rng = SeededRNG(seed: 99)
        var names: [String] = [], templates: [Int] = [], medias: [Int] = [], faceness: [Double] = []
        var tid = "", lmk = ""
        for i in 1...40 {
            let t = 100 + Int(rng.next() % 8) * 7  // sparse template ids
            let m = 5000 + t * 3 + Int(rng.next() % 3)  // 1-3 medias per template
            let name = "\(i).jpg"
            try Array("image \(i) of template \(t)".utf8).write(to: root + "/loose_crop/" + name)
            names.append(name); templates.append(t); medias.append(m)
            let score = 0.5 + rng.uniformDouble() / 2
            faceness.append(score)
            tid += "\(name) \(t) \(m)\n"
            lmk += name + (0..<10).map { _ in " \(Float(40 + rng.uniformDouble() * 30))" }.joined() + " \(score)\n"
        }
        var pairs = ""
        let ids = Set(templates).sorted()
        for a in ids { for b in ids where a < b { pairs += "\(a) \(b) \(((a + b) / 7) % 3 == 0 ? 1 : 0)\n" } }
        try Array(tid.utf8).write(to: root + "/meta/ijbc_face_tid_mid.txt")
        try Array(lmk.utf8).write(to: root + "/meta/ijbc_name_5pts_score.txt")
        try Array(pairs.utf8).write(to: root + "/meta/ijbc_template_pair_label.txt")
        return (names, templates, medias, faceness)
    }

    /// eval_ijbc.py written out directly for one template: its normalised feature.
    static func bruteTemplate(_ t: Int, feats: [[Double]], templates: [Int], medias: [Int]) -> [Double] {
        let members = templates.indices.filter { templates[$0] == t }
        let mediaIDs = Set(members.map { medias[$0] }).sorted()
        var sum = [Double](repeating: 0, count: feats[0].count)
        for m in mediaIDs {
            let imgs = members.filter { medias[$0] == m }
            for j in sum.indices { sum[j] += imgs.map { feats[$0][j] }.reduce(0, +) / Double(imgs.count) }
        }
        let norm = sum.map { $0 * $0 }.reduce(0, +).squareRoot()
        return sum.map { $0 / norm }
    }

    func testMiniatureIJBAgainstBruteForce() throws {
        let root = try Reference.temporaryFolder()
        defer { Reference.removeTree(root) }
        let (names, templates, medias, faceness) = try Self.makeFolder(root)
        let meta = try IJB.loadMeta(root: root, target: "IJBC")
        XCTAssertEqual(meta.imageNames, names)
        XCTAssertEqual(meta.templates, templates)
        XCTAssertEqual(meta.medias, medias)
        XCTAssertEqual(meta.faceness, faceness)
        XCTAssertEqual(meta.landmarks.count, 40)
        let pairCount = meta.pairLabel.count
        XCTAssertEqual(pairCount, Set(templates).count * (Set(templates).count - 1) / 2)

        let source = HashEmbeddingSource()
        for (flip, norm, det) in [(true, false, false), (false, false, false), (true, true, false), (true, false, true)] {
            var o = IJB.Options()
            o.flip = flip; o.normScore = norm; o.detectorScore = det
            let report = try Evaluation.verifyIJB(root: root, target: "ijbc", source: source, options: o)
            // brute force
            let feats: [[Double]] = (0..<40).map { i in
                let bytes = Array("image \(i + 1) of template \(templates[i])".utf8)
                var v = HashEmbeddingSource.vector(bytes, mirrored: false, dim: 16)
                if flip { let m = HashEmbeddingSource.vector(bytes, mirrored: true, dim: 16); for j in 0..<16 { v[j] += m[j] } }
                var d = v.map(Double.init)
                if !norm { let n = d.map { $0 * $0 }.reduce(0, +).squareRoot(); d = d.map { $0 / n } }
                if det { d = d.map { $0 * faceness[i] } }
                return d
            }
            var scores: [Double] = []
            for k in 0..<pairCount {
                let a = Self.bruteTemplate(meta.pairTemplate1[k], feats: feats, templates: templates, medias: medias)
                let b = Self.bruteTemplate(meta.pairTemplate2[k], feats: feats, templates: templates, medias: medias)
                scores.append(zip(a, b).map { $0 * $1 }.reduce(0, +))
            }
            let expect = try TARReport(scores: scores, labels: meta.pairLabel)
            XCTAssertEqual(report.curve.tpr, expect.curve.tpr, "options \(o)")
            XCTAssertEqual(report.curve.fpr, expect.curve.fpr)
            XCTAssertEqual(report.tars, expect.tars)
            for (x, y) in zip(report.thresholds, expect.thresholds) where x.isFinite {
                XCTAssertEqual(x, y, accuracy: 1e-12)
            }
            XCTAssertEqual(report.name, IJB.methodName("model", o))
        }
        XCTAssertEqual(source.landmarksSeen, 4 * 40, "every IJB image is aligned with its landmarks")
    }

    func testMetaErrors() throws {
        XCTAssertThrowsError(try IJB.parseTemplateMedia("1.jpg 3\n"))
        XCTAssertThrowsError(try IJB.parsePairs("1 2 7\n"))
        XCTAssertThrowsError(try IJB.parseLandmarks("1.jpg 1 2 3\n"))
        let p = try IJB.parsePairs("1 2 1\n3 4 0\n")
        XCTAssertEqual(p.labels, [true, false])
        XCTAssertThrowsError(try IJB.scores(ids: [1], features: [1], dim: 1, t1: [1], t2: [2]))
    }
}
