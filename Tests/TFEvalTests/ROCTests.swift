import TFCore
@testable import TFEval
import TFTestSupport
import XCTest

/// ROC / TAR@FAR against brute-force computations.
final class ROCTests: XCTestCase {
    /// Scores with many ties (quantised) and labels.
    static func data(_ n: Int, seed: UInt64) -> ([Double], [Bool]) {
        var rng = SeededRNG(seed: seed)
        var s: [Double] = [], y: [Bool] = []
        for _ in 0..<n {
            let pos = rng.uniformDouble() < 0.3
            let v = (pos ? 0.35 : 0.0) + rng.uniformDouble() * 0.65
            s.append((v * 200).rounded() / 200)  // ties
            y.append(pos)
        }
        return (s, y)
    }

    /// Every distinct threshold, counted directly.
    static func bruteCurve(_ s: [Double], _ y: [Bool]) -> (fpr: [Double], tpr: [Double], thr: [Double], tp: [Int], fp: [Int]) {
        let p = y.filter { $0 }.count, q = y.count - p
        var thr = [Double.infinity], tp = [0], fp = [0]
        for t in Set(s).sorted(by: >) {
            var a = 0, b = 0
            for (v, l) in zip(s, y) where v >= t { if l { a += 1 } else { b += 1 } }
            thr.append(t); tp.append(a); fp.append(b)
        }
        return (fp.map { Double($0) / Double(q) }, tp.map { Double($0) / Double(p) }, thr, tp, fp)
    }

    func testCurveMatchesBruteForce() throws {
        let (s, y) = Self.data(3000, seed: 3)
        let full = try ROCCurve(scores: s, labels: y, dropIntermediate: false)
        let b = Self.bruteCurve(s, y)
        XCTAssertEqual(full.fpr, b.fpr)
        XCTAssertEqual(full.tpr, b.tpr)
        XCTAssertEqual(full.thresholds, b.thr)
        // sklearn's drop_intermediate: keep the ends and every point where a second difference is non-zero
        var keep = [0]
        for i in 1..<(b.fp.count - 1) where b.fp[i + 1] - 2 * b.fp[i] + b.fp[i - 1] != 0 || b.tp[i + 1] - 2 * b.tp[i] + b.tp[i - 1] != 0 {
            keep.append(i)
        }
        keep.append(b.fp.count - 1)
        // sklearn drops before prepending (0, 0): index 0 of the brute curve is that point, and
        // the first real point is always kept; recompute on the un-prefixed arrays
        var keep2 = [1]
        for i in 2..<(b.fp.count - 1) where b.fp[i + 1] - 2 * b.fp[i] + b.fp[i - 1] != 0 || b.tp[i + 1] - 2 * b.tp[i] + b.tp[i - 1] != 0 {
            keep2.append(i)
        }
        keep2.append(b.fp.count - 1)
        let dropped = try ROCCurve(scores: s, labels: y)
        XCTAssertEqual(dropped.thresholds, [Double.infinity] + keep2.map { b.thr[$0] })
        XCTAssertEqual(dropped.fpr, [0] + keep2.map { b.fpr[$0] })
        XCTAssertLessThan(dropped.count, full.count)
        XCTAssertEqual(dropped.auc, full.auc, accuracy: 1e-12)
        _ = keep
    }

    func testTARAtFARBruteForce() throws {
        let (s, y) = Self.data(5000, seed: 11)
        let fars = [1e-4, 1e-3, 1e-2, 0.05, 0.1, 0.3]
        let b = Self.bruteCurve(s, y)
        for convention in [ROCCurve.Convention.closest, .atMost] {
            let report = try TARReport(scores: s, labels: y, fars: fars, convention: convention)
            let c = report.curve
            for (k, x) in fars.enumerated() {
                // brute force over the curve's points
                var bi = 0
                switch convention {
                case .closest:
                    // eval_ijbc: min over (|fpr - x|, index) of the flipped arrays
                    var best = (Double.infinity, Int.max)
                    for j in 0..<c.count {
                        let flipped = c.count - 1 - j
                        let cand = (abs(c.fpr[flipped] - x), j)
                        if cand < best { best = cand }
                    }
                    bi = c.count - 1 - best.1
                case .atMost:
                    // the largest TPR with FPR <= x, counted directly at every distinct threshold
                    var tar = 0.0, thr = Double.infinity
                    for j in 0..<b.fpr.count where b.fpr[j] <= x && b.tpr[j] >= tar { tar = b.tpr[j]; thr = b.thr[j] }
                    XCTAssertEqual(report.tars[k], tar, "FAR \(x)")
                    XCTAssertEqual(report.thresholds[k], thr, "FAR \(x)")
                    continue
                }
                XCTAssertEqual(report.tars[k], c.tpr[bi], "FAR \(x)")
                XCTAssertEqual(report.thresholds[k], c.thresholds[bi], "FAR \(x)")
                // the threshold really gives that TAR: count directly
                let t = report.thresholds[k]
                let acceptedPos = zip(s, y).filter { $0.1 && $0.0 >= t }.count
                XCTAssertEqual(Double(acceptedPos) / Double(y.filter { $0 }.count), report.tars[k])
            }
        }
    }

    func testWritersAndPlot() throws {
        let (s, y) = Self.data(400, seed: 5)
        let r = try TARReport(name: "a<b", scores: s, labels: y)
        XCTAssertTrue(r.curveCSV.hasPrefix("threshold,fpr,tpr\ninf,0.0,0.0\n"))
        XCTAssertEqual(r.tableCSV.split(separator: "\n").count, 7)
        XCTAssertTrue(r.json.contains("\"fars\": [1e-06, 1e-05, 0.0001, 0.001, 0.01, 0.1]"))
        XCTAssertTrue(r.json.contains("\"thresholds\": [null, "))
        let svg = ROCPlot.svg([r, try TARReport(name: "b", scores: s.map { $0 * $0 }, labels: y)], title: "IJB-C")
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertTrue(svg.contains("a&lt;b"))
        XCTAssertEqual(svg.components("<polyline"), 2)
        XCTAssertTrue(svg.hasSuffix("</svg>\n"))
        XCTAssertEqual(TextFormat.fixed(99.005, 2), "99.01")
        XCTAssertEqual(TextFormat.fixed(-0.5, 0), "-1")
        XCTAssertEqual(TextFormat.fixed(0.04, 1), "0.0")
        XCTAssertEqual(JSONText.quoted("a\"\n\u{1}"), "\"a\\\"\\n\\u0001\"")
        let dir = try Reference.temporaryFolder()
        defer { Reference.removeTree(dir) }
        try Array(svg.utf8).write(to: dir + "/roc.svg")
    }

    func testEdgeCases() throws {
        XCTAssertThrowsError(try ROCCurve(scores: [], labels: []))
        XCTAssertThrowsError(try ROCCurve(scores: [1, .nan], labels: [true, false]))
        let one = try ROCCurve(scores: [0.5, 0.5], labels: [true, false])
        XCTAssertEqual(one.fpr, [0, 1])
        XCTAssertEqual(one.tpr, [0, 1])
        let noNeg = try ROCCurve(scores: [0.5, 0.7], labels: [true, true])
        XCTAssertTrue(noNeg.fpr.allSatisfy { $0.isNaN })
    }
}

extension String {
    func components(_ s: String) -> Int {
        var n = 0, rest = Substring(self)
        while let r = rest.range(of: s) { n += 1; rest = rest[r.upperBound...] }
        return n
    }
}

extension Array where Element == UInt8 {
    func write(to path: String) throws {
        guard let f = fopen(path, "wb") else { throw TransFaceError.io("cannot create \(path)") }
        defer { fclose(f) }
        guard isEmpty || fwrite(self, 1, count, f) == count else { throw TransFaceError.io("cannot write \(path)") }
    }
}
