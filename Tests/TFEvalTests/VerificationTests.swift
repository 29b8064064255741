import TFCore
@testable import TFEval
import TFTestSupport
import XCTest

/// The official 10-fold protocol against `reference/verification` (computed by the official
/// `verification.py`), bit for bit, and against naive re-implementations.
final class VerificationTests: XCTestCase {
    struct Fixture {
        let embeddings: [Double]
        let issame: [Bool]
        let dist: [Double]
        let thresholds: [Double]
        let tpr: [Double]
        let fpr: [Double]
        let foldAccuracy: [Double]
        let bestThreshold: [Double]
        let mean: Double
        let std: Double
    }

    static func fixture() throws -> Fixture {
        let v = "verification/ver/"
        return Fixture(embeddings: try NPY64(v + "embeddings").doubles, issame: try NPY64(v + "issame").bools,
                       dist: try NPY64(v + "dist").doubles, thresholds: try NPY64(v + "thresholds").doubles,
                       tpr: try NPY64(v + "tpr").doubles, fpr: try NPY64(v + "fpr").doubles,
                       foldAccuracy: try NPY64(v + "fold_accuracy").doubles, bestThreshold: try NPY64(v + "best_threshold").doubles,
                       mean: try NPY64(v + "accuracy_mean").doubles[0], std: try NPY64(v + "accuracy_std").doubles[0])
    }

    func bitsEqual(_ a: [Double], _ b: [Double], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let diffs = zip(a, b).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        XCTAssertTrue(diffs.isEmpty, "\(what): \(diffs.count) values differ, first \(diffs.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")",
                      file: file, line: line)
    }

    func testReferenceFixtureBitExact() throws {
        let f = try Self.fixture()
        XCTAssertEqual(f.issame.count, 600)
        XCTAssertEqual(f.embeddings.count, 1200 * 32)
        // the fixture's rows are already normalised (sklearn normalize) as verification.test does
        var options = Verification.Options()
        options.normalize = false
        let dist = try f.embeddings.withUnsafeBufferPointer {
            try Verification.distances($0, nil, pairs: 600, dim: 32, normalize: false)
        }
        bitsEqual(dist, f.dist, "squared distances")
        let r = try Verification.evaluate(distances: dist, issame: f.issame, options: options)
        bitsEqual(r.thresholds, f.thresholds, "thresholds np.arange(0, 4, 0.01)")
        bitsEqual(r.foldAccuracy, f.foldAccuracy, "fold accuracy")
        bitsEqual(r.foldThreshold, f.bestThreshold, "best thresholds")
        bitsEqual(r.tpr, f.tpr, "tpr")
        bitsEqual(r.fpr, f.fpr, "fpr")
        XCTAssertEqual(r.accuracyMean.bitPattern, f.mean.bitPattern, "mean \(r.accuracyMean) vs \(f.mean)")
        XCTAssertEqual(r.accuracyStd.bitPattern, f.std.bitPattern, "std \(r.accuracyStd) vs \(f.std)")
        print("verification fixture: accuracy \(r.accuracyMean) ± \(r.accuracyStd) (reference \(f.mean) ± \(f.std)), " +
              "thresholds \(r.foldThreshold), VAL@FAR=1e-3 \(r.valMean) ± \(r.valStd), FAR \(r.farMean), best \(r.bestThreshold) (\(r.bestAccuracy))")

        // re-normalising in float64 (the library's default) moves distances by ulps only: the
        // protocol's outputs are unchanged
        let renorm = try Verification.evaluate(embeddings1: f.embeddings, embeddings2: nil, issame: f.issame, dim: 32)
        XCTAssertLessThan(zip(renorm.distances, f.dist).map { abs($0 - $1) }.max()!, 1e-14)
        bitsEqual(renorm.foldAccuracy, f.foldAccuracy, "fold accuracy (renormalised)")
        bitsEqual(renorm.tpr, f.tpr, "tpr (renormalised)")
        bitsEqual(renorm.fpr, f.fpr, "fpr (renormalised)")
        bitsEqual(renorm.foldThreshold, f.bestThreshold, "thresholds (renormalised)")

        // two arrays instead of interleaved rows
        var e1: [Double] = [], e2: [Double] = []
        for i in 0..<600 { e1 += f.embeddings[(64 * i)..<(64 * i + 32)]; e2 += f.embeddings[(64 * i + 32)..<(64 * i + 64)] }
        let split = try Verification.evaluate(embeddings1: e1, embeddings2: e2, issame: f.issame, dim: 32, options: options)
        bitsEqual(split.distances, f.dist, "distances from two arrays")

        // float32 embeddings (what the C ABI takes): same accuracy
        let f32 = try Verification.evaluate(embeddings1: f.embeddings.map { Float($0) }, embeddings2: nil, issame: f.issame, dim: 32)
        bitsEqual(f32.foldAccuracy, f.foldAccuracy, "fold accuracy (float32 input)")
        print("float32 input: accuracy \(f32.accuracyMean) ± \(f32.accuracyStd), tpr/fpr identical: \(f32.tpr == f.tpr && f32.fpr == f.fpr)")
    }

    /// The protocol written out naively, as verification.py loops.
    static func naive(_ dist: [Double], _ issame: [Bool], folds k: Int, interleaved: Bool, farTarget: Double = 1e-3)
        -> (acc: [Double], thr: [Double], tpr: [Double], fpr: [Double], val: [Double], far: [Double]) {
        let n = dist.count
        let thresholds = (0..<400).map { Double($0) * 0.01 }
        var fold = [Int](repeating: 0, count: n)
        if interleaved { for i in 0..<n { fold[i] = i % k } } else {
            var start = 0
            for f in 0..<k { let size = n / k + (f < n % k ? 1 : 0); for i in start..<(start + size) { fold[i] = f }; start += size }
        }
        func stats(_ t: Double, _ idx: [Int]) -> (Double, Double, Double) {
            var tp = 0, fp = 0, tn = 0, fn = 0
            for i in idx {
                let p = dist[i] < t
                if p && issame[i] { tp += 1 } else if p { fp += 1 } else if issame[i] { fn += 1 } else { tn += 1 }
            }
            return (tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn), fp + tn == 0 ? 0 : Double(fp) / Double(fp + tn), Double(tp + tn) / Double(idx.count))
        }
        var acc: [Double] = [], thr: [Double] = [], tprs = [Double](repeating: 0, count: 400), fprs = tprs, val: [Double] = [], far: [Double] = []
        let valThresholds = (0..<4000).map { Double($0) * 0.001 }
        for f in 0..<k {
            let test = (0..<n).filter { fold[$0] == f }, train = (0..<n).filter { fold[$0] != f }
            var best = 0, bestAcc = -1.0
            for (ti, t) in thresholds.enumerated() { let a = stats(t, train).2; if a > bestAcc { bestAcc = a; best = ti } }
            for (ti, t) in thresholds.enumerated() { let s = stats(t, test); tprs[ti] += s.0; fprs[ti] += s.1 }
            acc.append(stats(thresholds[best], test).2); thr.append(thresholds[best])
            // VAL: numpy.interp on the (sorted, non-decreasing) train FAR curve
            let trainDiff = train.filter { !issame[$0] }.map { dist[$0] }
            var farTrain = [Double](repeating: 0, count: valThresholds.count)
            for (ti, t) in valThresholds.enumerated() {
                var c = 0
                for x in trainDiff where x < t { c += 1 }
                farTrain[ti] = Double(c) / Double(trainDiff.count)
            }
            var threshold = 0.0
            if farTrain.max()! >= farTarget {
                var j = 0
                while j + 1 < farTrain.count && farTrain[j + 1] <= farTarget { j += 1 }
                if j + 1 < farTrain.count {
                    let slope = (valThresholds[j + 1] - valThresholds[j]) / (farTrain[j + 1] - farTrain[j])
                    threshold = slope * (farTarget - farTrain[j]) + valThresholds[j]
                } else {
                    threshold = valThresholds[j]
                }
            }
            let s = test.filter { issame[$0] }, d = test.filter { !issame[$0] }
            val.append(Double(s.filter { dist[$0] < threshold }.count) / Double(s.count))
            far.append(Double(d.filter { dist[$0] < threshold }.count) / Double(d.count))
        }
        return (acc, thr, tprs.map { $0 / Double(k) }, fprs.map { $0 / Double(k) }, val, far)
    }

    func testAgainstNaiveProtocolBothFoldings() throws {
        var rng = SeededRNG(seed: 7)
        // 203 pairs: uneven folds (KFold gives the first 3 folds one pair more)
        let n = 203
        var dist: [Double] = [], same: [Bool] = []
        for i in 0..<n {
            let s = i < 100  // sorted by class, like pairsDevTest
            same.append(s)
            dist.append(s ? 0.6 + rng.uniformDouble() * 1.0 : 1.2 + rng.uniformDouble() * 1.2)
        }
        for interleaved in [false, true] {
            var o = Verification.Options()
            o.interleavedFolds = interleaved
            let r = try Verification.evaluate(distances: dist, issame: same, options: o)
            let ref = Self.naive(dist, same, folds: 10, interleaved: interleaved)
            XCTAssertEqual(r.foldAccuracy, ref.acc, "interleaved \(interleaved)")
            XCTAssertEqual(r.foldThreshold, ref.thr)
            XCTAssertEqual(r.tpr, ref.tpr)
            XCTAssertEqual(r.fpr, ref.fpr)
            for (a, b) in zip(r.foldAccuracy, ref.acc) { XCTAssertEqual(a, b) }
            if interleaved {
                // every fold has both classes: VAL is defined; interpolated thresholds may differ in the last bits
                XCTAssertEqual(r.valMean, ref.val.reduce(0, +) / 10, accuracy: 1e-12)
                XCTAssertEqual(r.farMean, ref.far.reduce(0, +) / 10, accuracy: 1e-12)
            } else {
                XCTAssertTrue(r.valMean.isNaN, "contiguous folds of class-sorted pairs have folds without same pairs")
            }
        }
        XCTAssertEqual(Verification.foldAssignment(pairs: 23, folds: 10, interleaved: false),
                       [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9])
    }

    func testSlinearInterpolationMatchesSciPyRules() {
        // duplicates: value at a repeated x is the last point of the run; between runs linear
        let x = [0.0, 0.0, 0.0, 0.25, 0.25, 0.5, 1.0, 1.0]
        let y = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
        XCTAssertEqual(Verification.slinear(x: x, y: y, at: 0), 0.2)
        XCTAssertEqual(Verification.slinear(x: x, y: y, at: 0.25), 0.4, accuracy: 1e-15)
        XCTAssertEqual(Verification.slinear(x: x, y: y, at: 0.125), 0.25, accuracy: 1e-15)
        XCTAssertEqual(Verification.slinear(x: x, y: y, at: 0.75), 0.55, accuracy: 1e-15)
        XCTAssertEqual(Verification.slinear(x: x, y: y, at: 1.0), 0.6, accuracy: 1e-15)  // right end: first of the run
    }

    func testNumpySummationOrders() {
        // pairwise summation differs from a running sum on these values
        let a: [Double] = (0..<300).map { (i: Int) -> Double in 1.0 / Double(i + 1) + (i % 3 == 0 ? 1e10 : 0.0) }
        var running = 0.0
        for v in a { running += v }
        let pw = NumpyMath.sum(a)
        XCTAssertEqual(pw, running, accuracy: 1e-3)
        XCTAssertEqual(NumpyMath.arange(start: 0, stop: 4, step: 0.001).count, 4000)
        XCTAssertEqual(NumpyMath.arange(start: 0, stop: 4, step: 0.01)[7], 7 * 0.01)
        XCTAssertEqual(NumpyMath.std([1, 2, 3, 4]), (1.25).squareRoot())
    }

    func testArgumentErrors() {
        XCTAssertThrowsError(try Verification.evaluate(distances: [1, 2], issame: [true]))
        XCTAssertThrowsError(try Verification.evaluate(distances: [1, 2], issame: [true, false]))  // 10 folds > 2 pairs
        XCTAssertThrowsError(try Verification.evaluate(embeddings1: [Float](repeating: 0, count: 8), embeddings2: nil,
                                                       issame: [true, false], dim: 2)) { e in
            XCTAssertEqual((e as? TransFaceError)?.kind, .numeric)
        }
        var o = Verification.Options()
        o.folds = 1
        XCTAssertNoThrow(try Verification.evaluate(distances: [0.5, 2.5], issame: [true, false], options: o))
    }
}
