import TFCore

/// The official k-fold face-verification protocol of insightface / arcface_torch
/// (`eval/verification.py`: `calculate_roc`, `calculate_val`, `evaluate`), reproduced to the last
/// bit on float64 distances:
///
/// * rows are L2-normalised in float64 (sklearn `normalize`), distance = squared L2 of the pair
///   difference summed as NumPy does;
/// * thresholds `np.arange(0, 4, 0.01)`; `KFold(n_splits, shuffle=False)`: contiguous folds, the
///   first `n % k` one pair larger; for each fold the best threshold is the first argmax of the
///   accuracy on the other folds, the fold's accuracy is measured at it; a pair is predicted
///   "same" iff `dist < threshold`;
/// * `tpr`/`fpr` = mean over folds of the test fold's TPR/FPR at every threshold;
/// * VAL@FAR (`calculate_val`): thresholds `np.arange(0, 4, 0.001)`; on the training folds the
///   threshold reaching the target FAR is interpolated linearly from (FAR, threshold) as
///   `interp1d(kind='slinear')` does on the sorted curve (at a run of equal FARs the last
///   threshold of the run; 0 when the target FAR is never reached), then VAL and FAR are
///   measured on the test fold. Newer SciPy raises on the duplicate FARs that curve always has
///   ("Expect x to not have duplicates"), which is why the reference fixture records no VAL.
///
/// `interleavedFolds` assigns pair `i` to fold `i % k` instead, for files whose pairs are
/// sorted by class (LFW `pairsDevTest.txt`: 500 same then 500 different; contiguous folds would
/// each hold one class). VAL/FAR of a fold without same (different) pairs is NaN, where the
/// official code divides by zero.
public enum Verification {
    public struct Options: Equatable {
        public var folds = 10
        public var interleavedFolds = false
        /// L2-normalise the embeddings first (in float64).
        public var normalize = true
        public var thresholdStep = 0.01
        public var thresholdStop = 4.0
        public var farTarget = 1e-3
        public var valThresholdStep = 0.001
        public init() {}
    }

    public struct Report {
        public var pairs: Int
        public var folds: Int
        public var interleavedFolds: Bool
        /// Accuracy on each test fold at its best threshold; mean and population std.
        public var foldAccuracy: [Double]
        public var accuracyMean: Double
        public var accuracyStd: Double
        /// The best threshold of each fold (chosen on the other folds).
        public var foldThreshold: [Double]
        /// The first-argmax threshold and its accuracy on all pairs at once (for deployment).
        public var bestThreshold: Double
        public var bestAccuracy: Double
        /// `np.arange(0, 4, 0.01)` and the mean test-fold TPR/FPR at each.
        public var thresholds: [Double]
        public var tpr: [Double]
        public var fpr: [Double]
        /// VAL@FAR=farTarget: mean and std of VAL over folds, mean FAR.
        public var farTarget: Double
        public var valMean: Double
        public var valStd: Double
        public var farMean: Double
        /// Squared L2 distance of each pair.
        public var distances: [Double]
        /// Mean norm of the raw (un-normalised, un-summed) embeddings, when the caller knows them
        /// (insightface's "XNorm"); NaN otherwise.
        public var xnorm: Double = .nan
        /// Images embedded (evaluation from images).
        public var images: Int = 0
    }

    // MARK: distances

    /// Squared L2 distance of each pair of rows (`dim` floats each), after optional float64
    /// L2-normalisation of every row. `emb2` nil: `emb1` holds `2 * pairs` rows, pair `i` being
    /// rows `2i` and `2i+1` (the `.bin` order).
    public static func distances<T: BinaryFloatingPoint>(_ emb1: UnsafeBufferPointer<T>, _ emb2: UnsafeBufferPointer<T>?,
                                                          pairs: Int, dim: Int, normalize: Bool = true) throws -> [Double] {
        try require(pairs >= 1, "need at least one pair")
        try require(dim >= 1, "embedding size must be at least 1")
        let rows = try checkedProduct([pairs, emb2 == nil ? 2 : 1, dim], what: "embeddings")
        try require(emb1.count >= rows, "embeddings hold \(emb1.count) values, \(rows) needed")
        if let e2 = emb2 { try require(e2.count >= pairs * dim, "second embeddings hold \(e2.count) values, \(pairs * dim) needed") }
        var a = [Double](repeating: 0, count: dim), b = a, sq = a
        var out = [Double](repeating: 0, count: pairs)
        func load(_ src: UnsafeBufferPointer<T>, _ row: Int, into v: inout [Double], _ what: String) throws {
            for j in 0..<dim {
                let x = Double(src[row * dim + j])
                guard x.isFinite else { throw TransFaceError(.numeric, "\(what) row \(row) holds a non-finite value") }
                v[j] = x
            }
            if normalize {
                for j in 0..<dim { sq[j] = v[j] * v[j] }
                let norm = NumpyMath.sum(sq).squareRoot()
                guard norm > 0 else { throw TransFaceError(.numeric, "\(what) row \(row) is zero; cannot normalise") }
                for j in 0..<dim { v[j] /= norm }
            }
        }
        for i in 0..<pairs {
            if let e2 = emb2 {
                try load(emb1, i, into: &a, "embeddings1")
                try load(e2, i, into: &b, "embeddings2")
            } else {
                try load(emb1, 2 * i, into: &a, "embeddings")
                try load(emb1, 2 * i + 1, into: &b, "embeddings")
            }
            for j in 0..<dim { let d = a[j] - b[j]; sq[j] = d * d }
            out[i] = NumpyMath.sum(sq)
        }
        return out
    }

    public static func evaluate<T: BinaryFloatingPoint>(embeddings1: [T], embeddings2: [T]?, issame: [Bool], dim: Int,
                                                         options: Options = Options()) throws -> Report {
        let d = try embeddings1.withUnsafeBufferPointer { e1 in
            try withOptionalBuffer(embeddings2) { e2 in
                try distances(e1, e2, pairs: issame.count, dim: dim, normalize: options.normalize)
            }
        }
        return try evaluate(distances: d, issame: issame, options: options)
    }

    // MARK: protocol

    /// Test-fold membership: `fold[i]` for every pair.
    public static func foldAssignment(pairs n: Int, folds k: Int, interleaved: Bool) -> [Int] {
        if k == 1 { return [Int](repeating: 0, count: n) }
        if interleaved { return (0..<n).map { $0 % k } }
        var fold = [Int](repeating: 0, count: n)
        let base = n / k, extra = n % k
        var start = 0
        for f in 0..<k {
            let size = base + (f < extra ? 1 : 0)
            for i in start..<(start + size) { fold[i] = f }
            start += size
        }
        return fold
    }

    /// Counts of accepted (`dist < t`) same and different pairs at every threshold.
    struct AcceptCurve {
        var same: [Int]
        var diff: [Int]
        var totalSame = 0
        var totalDiff = 0

        init(_ dist: [Double], _ issame: [Bool], _ members: [Int], thresholds: [Double]) {
            let sorted = members.map { (dist[$0], issame[$0]) }.sorted { $0.0 < $1.0 }
            same = [Int](repeating: 0, count: thresholds.count)
            diff = same
            var p = 0, s = 0, d = 0
            for (k, t) in thresholds.enumerated() {
                while p < sorted.count && sorted[p].0 < t {
                    if sorted[p].1 { s += 1 } else { d += 1 }
                    p += 1
                }
                same[k] = s; diff[k] = d
            }
            totalSame = sorted.filter { $0.1 }.count
            totalDiff = sorted.count - totalSame
        }

        init(minus a: AcceptCurve, _ b: AcceptCurve) {
            same = zip(a.same, b.same).map { $0 - $1 }
            diff = zip(a.diff, b.diff).map { $0 - $1 }
            totalSame = a.totalSame - b.totalSame
            totalDiff = a.totalDiff - b.totalDiff
        }

        var count: Int { totalSame + totalDiff }

        /// `calculate_accuracy` at threshold k: (tpr, fpr, acc).
        func rates(_ k: Int) -> (tpr: Double, fpr: Double, acc: Double) {
            let tp = same[k], fn = totalSame - same[k], fp = diff[k], tn = totalDiff - diff[k]
            let tpr = tp + fn == 0 ? 0 : Double(tp) / Double(tp + fn)
            let fpr = fp + tn == 0 ? 0 : Double(fp) / Double(fp + tn)
            return (tpr, fpr, Double(tp + tn) / Double(count))
        }

        /// `calculate_val_far` at threshold k: (val, far); NaN when a class is absent.
        func valFar(_ k: Int) -> (val: Double, far: Double) {
            (Double(same[k]) / Double(totalSame), Double(diff[k]) / Double(totalDiff))
        }
    }

    /// The protocol on precomputed distances.
    public static func evaluate(distances dist: [Double], issame: [Bool], options: Options = Options()) throws -> Report {
        let n = dist.count, k = options.folds
        try require(n >= 1, "need at least one pair")
        try require(issame.count == n, "\(n) distances but \(issame.count) labels")
        try require(k >= 1 && k <= n, "folds must be in 1...\(n) (pairs), got \(k)")
        try require(dist.allSatisfy { !$0.isNaN }, "a distance is NaN")
        try require(options.thresholdStep > 0 && options.valThresholdStep > 0 && options.thresholdStop > 0, "threshold steps must be positive")
        let thresholds = NumpyMath.arange(start: 0, stop: options.thresholdStop, step: options.thresholdStep)
        let valThresholds = NumpyMath.arange(start: 0, stop: options.thresholdStop, step: options.valThresholdStep)
        try require(!thresholds.isEmpty && thresholds.count <= 10_000_000 && valThresholds.count <= 10_000_000, "too many thresholds")
        let fold = foldAssignment(pairs: n, folds: k, interleaved: options.interleavedFolds)
        var members = [[Int]](repeating: [], count: k)
        for i in 0..<n { members[fold[i]].append(i) }
        let all = Array(0..<n)
        let allCurve = AcceptCurve(dist, issame, all, thresholds: thresholds)
        let allVal = AcceptCurve(dist, issame, all, thresholds: valThresholds)

        var foldAccuracy: [Double] = [], foldThreshold: [Double] = []
        var tprSum = [Double](repeating: 0, count: thresholds.count), fprSum = tprSum
        var vals: [Double] = [], fars: [Double] = []
        for f in 0..<k {
            let test = AcceptCurve(dist, issame, members[f], thresholds: thresholds)
            // LFold(1): train and test are all pairs
            let train = k == 1 ? test : AcceptCurve(minus: allCurve, test)
            var best = 0, bestAcc = -Double.infinity
            for t in 0..<thresholds.count {
                let acc = train.rates(t).acc
                if acc > bestAcc { bestAcc = acc; best = t }
            }
            for t in 0..<thresholds.count {
                let r = test.rates(t)
                tprSum[t] += r.tpr
                fprSum[t] += r.fpr
            }
            foldAccuracy.append(test.rates(best).acc)
            foldThreshold.append(thresholds[best])

            // VAL@FAR
            let testVal = AcceptCurve(dist, issame, members[f], thresholds: valThresholds)
            let trainVal = k == 1 ? testVal : AcceptCurve(minus: allVal, testVal)
            let farTrain = (0..<valThresholds.count).map { trainVal.valFar($0).far }
            let threshold: Double
            if let mx = farTrain.max(), mx >= options.farTarget {
                threshold = slinear(x: farTrain, y: valThresholds, at: options.farTarget)
            } else {
                threshold = 0
            }
            let testMembers = members[f]
            var ta = 0, fa = 0, nSame = 0, nDiff = 0
            for i in testMembers {
                let accept = dist[i] < threshold
                if issame[i] { nSame += 1; if accept { ta += 1 } } else { nDiff += 1; if accept { fa += 1 } }
            }
            vals.append(Double(ta) / Double(nSame))
            fars.append(Double(fa) / Double(nDiff))
        }
        var bestAll = 0, bestAllAcc = -Double.infinity
        for t in 0..<thresholds.count {
            let acc = allCurve.rates(t).acc
            if acc > bestAllAcc { bestAllAcc = acc; bestAll = t }
        }
        return Report(pairs: n, folds: k, interleavedFolds: options.interleavedFolds,
                      foldAccuracy: foldAccuracy, accuracyMean: NumpyMath.mean(foldAccuracy), accuracyStd: NumpyMath.std(foldAccuracy),
                      foldThreshold: foldThreshold, bestThreshold: thresholds[bestAll], bestAccuracy: bestAllAcc,
                      thresholds: thresholds, tpr: tprSum.map { $0 / Double(k) }, fpr: fprSum.map { $0 / Double(k) },
                      farTarget: options.farTarget, valMean: NumpyMath.mean(vals), valStd: NumpyMath.std(vals),
                      farMean: NumpyMath.mean(fars), distances: dist)
    }

    /// `scipy.interpolate.interp1d(x, y, kind='slinear')(at)` for `x` non-decreasing (a FAR
    /// curve over increasing thresholds): a degree-1 B-spline through the points, evaluated as
    /// SciPy's de Boor recursion does. With repeated x the value at a repeated x is the y of the
    /// last point of the run (the first at the right end).
    static func slinear(x: [Double], y: [Double], at v: Double) -> Double {
        let n = x.count
        guard n >= 2 else { return y.first ?? 0 }
        // interval [x[j], x[j+1]) of non-zero length holding v; at the right end, the last one
        var j = -1
        var lo = 0, hi = n - 1
        if v >= x[n - 1] {
            // last interval of non-zero length
            j = n - 2
            while j > 0 && x[j] == x[n - 1] { j -= 1 }
        } else {
            // largest j with x[j] <= v
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if x[mid] <= v { lo = mid } else { hi = mid - 1 }
            }
            j = max(lo, 0)
        }
        let xa = x[j], xb = x[j + 1]
        guard xb > xa else { return y[j] }
        let w = 1 / (xb - xa)
        let h0 = w * (xb - v), h1 = w * (v - xa)
        return y[j] * h0 + y[j + 1] * h1
    }
}

func withOptionalBuffer<T, R>(_ a: [T]?, _ body: (UnsafeBufferPointer<T>?) throws -> R) rethrows -> R {
    if let a { return try a.withUnsafeBufferPointer { try body($0) } }
    return try body(nil)
}
