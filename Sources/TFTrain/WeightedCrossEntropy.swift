#if canImport(Glibc)
import Glibc
#endif
import TFCore

/// The official `DistCrossEntropyFunc` (one process) with TransFace's EHSM sample weights:
/// softmax with max subtraction, `p_y`, `loss = −mean_b(w_b · log(max(p_y, 1e−30)))`, backward
/// `(softmax − onehot) · w_b / B` (w constant; the official backward ignores the 1e−30 floor).
///
/// Work is in place on a row of logits, as the official function does it: the logits become the
/// probabilities in `forwardRow`, and the probabilities become dL/dlogits in `backwardRow`.
public enum WeightedCrossEntropy {
    /// The floor of `p_y` before the log (`clamp_min_(1e-30)`).
    public static let probabilityFloor: Float = 1e-30

    /// Softmax of one row in place (float32 values, sum in Double) and the row's
    /// `nll = −log(max(p_y, 1e−30))` (0 when `label < 0`: the row has no target).
    @discardableResult
    public static func forwardRow(_ row: UnsafeMutablePointer<Float>, classes: Int, label: Int) -> Float {
        let m = rowMax(row, classes: classes)
        let sum = exponentiateRow(row, classes: classes, max: m)
        return normalizeRow(row, classes: classes, sum: sum, label: label)
    }

    // The three phases of `forwardRow`, for a row split over ranks (class-sharded Partial FC):
    // the max and the sum are reduced across ranks between them.

    /// The row's largest logit (−∞ for an empty row).
    @inline(__always)
    public static func rowMax(_ row: UnsafePointer<Float>, classes: Int) -> Float {
        var m = -Float.infinity
        for c in 0..<classes where row[c] > m { m = row[c] }
        return m
    }

    /// `row[c] ← exp(row[c] − max)`; returns the sum in Double.
    @inline(__always)
    public static func exponentiateRow(_ row: UnsafeMutablePointer<Float>, classes: Int, max m: Float) -> Double {
        var sum = 0.0
        for c in 0..<classes {
            let e = expf(row[c] - m)
            row[c] = e
            sum += Double(e)
        }
        return sum
    }

    /// `row[c] ← row[c] / Float(sum)`; returns `−log max(p_label, 1e−30)` (0 when `label < 0`).
    @inline(__always)
    public static func normalizeRow(_ row: UnsafeMutablePointer<Float>, classes: Int, sum: Double, label: Int) -> Float {
        let denominator = Float(sum)
        for c in 0..<classes { row[c] /= denominator }
        guard label >= 0 else { return 0 }
        let p = row[label]
        return -logf(p > probabilityFloor ? p : probabilityFloor)  // NaN p stays NaN
    }

    /// One row in place: probabilities → `(p − onehot(label)) · weight / batch`, times `extraScale`
    /// (the margin's `s` may be folded in here by the caller; pass 1 otherwise).
    public static func backwardRow(_ row: UnsafeMutablePointer<Float>, classes: Int, label: Int, weight: Float,
                                   batch: Int, extraScale: Float = 1) {
        if label >= 0 { row[label] -= 1 }
        let factor = weight / Float(batch) * extraScale
        for c in 0..<classes { row[c] *= factor }
    }

    /// `−mean_b(w_b · log max(p_y, 1e−30)) = mean_b(w_b · nll_b)`, in Double.
    public static func loss(nll: UnsafePointer<Float>, weights: UnsafePointer<Float>?, batch: Int) -> Double {
        guard batch > 0 else { return 0 }
        var total = 0.0
        for b in 0..<batch { total += Double(weights?[b] ?? 1) * Double(nll[b]) }
        return total / Double(batch)
    }

    /// dL/dw_b for the paper's reading of EHSM (gradient through the weight): `nll_b / B`.
    public static func weightGradient(nll: UnsafePointer<Float>, batch: Int, into out: UnsafeMutablePointer<Float>) {
        for b in 0..<batch { out[b] = nll[b] / Float(batch) }
    }

    /// The whole forward over `batch × classes` logits in place (→ probabilities), writing the
    /// per-sample nll; returns the loss. Labels must be in `0..<classes`.
    public static func forward(logits: UnsafeMutableBufferPointer<Float>, batch: Int, classes: Int,
                               labels: UnsafeBufferPointer<Int32>, weights: UnsafeBufferPointer<Float>?,
                               nll: UnsafeMutableBufferPointer<Float>) throws -> Double {
        try validate(count: logits.count, batch: batch, classes: classes, labels: labels, weights: weights)
        try require(nll.count >= batch, "cross entropy: nll buffer holds \(nll.count), needs \(batch)")
        for b in 0..<batch {
            nll[b] = forwardRow(logits.baseAddress! + b * classes, classes: classes, label: Int(labels[b]))
        }
        return loss(nll: nll.baseAddress!, weights: weights?.baseAddress, batch: batch)
    }

    /// The whole backward in place: probabilities → dL/dlogits.
    public static func backward(probabilities: UnsafeMutableBufferPointer<Float>, batch: Int, classes: Int,
                                labels: UnsafeBufferPointer<Int32>, weights: UnsafeBufferPointer<Float>?) throws {
        try validate(count: probabilities.count, batch: batch, classes: classes, labels: labels, weights: weights)
        for b in 0..<batch {
            backwardRow(probabilities.baseAddress! + b * classes, classes: classes, label: Int(labels[b]),
                        weight: weights?[b] ?? 1, batch: batch)
        }
    }

    static func validate(count: Int, batch: Int, classes: Int, labels: UnsafeBufferPointer<Int32>,
                         weights: UnsafeBufferPointer<Float>?) throws {
        try require(batch > 0 && classes > 0, "cross entropy: batch \(batch) and classes \(classes) must be positive")
        try require(count >= batch * classes, "cross entropy: logits hold \(count), need \(batch)×\(classes)")
        try require(labels.count >= batch, "cross entropy: \(labels.count) labels for a batch of \(batch)")
        if let weights { try require(weights.count >= batch, "cross entropy: \(weights.count) weights for a batch of \(batch)") }
        for b in 0..<batch {
            try require(labels[b] >= 0 && Int(labels[b]) < classes, "cross entropy: label \(labels[b]) of sample \(b) is outside 0..<\(classes)")
        }
    }
}
