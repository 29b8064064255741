import TFCore

/// `torch.nn.utils.clip_grad_norm_(backbone.parameters(), max_norm)` (norm type 2) over a
/// `ParameterGroup` of a gradient buffer: `total = sqrt(Σ_tensors ‖g_t‖²)`, computed in Double
/// (torch reduces in float32 and lands up to ~3e−5 relative below on the tiny reference),
/// `coef = max_norm / (total + 1e−6)` clamped to 1, `g *= coef`.
///
/// Difference: when the total is not finite, torch (error_if_nonfinite=False) multiplies every
/// gradient by NaN; we leave the gradients as they are and return a NaN coefficient, so the
/// trainer can skip the step (see `firstNonFinite`).
///
/// Each tensor's sum of squares is one worker's job and the sums are added in tensor order, so
/// the total is the same for any thread count. Holds per-tensor norms; allocation-free per call.
public final class GradientClipper {
    public let group: ParameterGroup
    private let squares: UnsafeMutablePointer<Double>

    public init(group: ParameterGroup) {
        self.group = group
        squares = .allocate(capacity: max(group.tensors.count, 1))
        squares.initialize(repeating: 0, count: max(group.tensors.count, 1))
    }

    deinit { squares.deallocate() }

    /// ‖g_t‖ of tensor `i` of the group from the last `totalNorm`/`clip`.
    public func tensorNorm(_ i: Int) -> Double { squares[i].squareRoot() }

    /// `sqrt(extraSquaredNorm + Σ_t ‖g_t‖²)`. `extraSquaredNorm` adds gradients held elsewhere.
    public func totalNorm(gradients: UnsafeBufferPointer<Float>, extraSquaredNorm: Double = 0, pool: WorkerPool? = nil) throws -> Double {
        try require(gradients.count >= group.extent, "clip: gradients hold \(gradients.count) floats, the group needs \(group.extent)")
        let g = gradients.baseAddress!
        let tensors = group.tensors
        PartialFC.parallel(pool, tensors.count) { r in
            for i in r {
                let t = tensors[i]
                var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0
                var j = t.offset
                let end = t.offset + t.count
                while j + 4 <= end {
                    let a = Double(g[j]), b = Double(g[j + 1]), c = Double(g[j + 2]), d = Double(g[j + 3])
                    s0 += a * a; s1 += b * b; s2 += c * c; s3 += d * d
                    j += 4
                }
                while j < end { let a = Double(g[j]); s0 += a * a; j += 1 }
                self.squares[i] = (s0 + s1) + (s2 + s3)
            }
        }
        var total = extraSquaredNorm
        for i in 0..<tensors.count { total += squares[i] }
        return total.squareRoot()
    }

    /// Clips in place and returns `(totalNorm, coefficient)`; the coefficient is the applied
    /// factor (≤ 1), NaN when the total is not finite (gradients then untouched).
    @discardableResult
    public func clip(gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Double, extraSquaredNorm: Double = 0,
                     pool: WorkerPool? = nil) throws -> (totalNorm: Double, coefficient: Double) {
        try require(maxNorm.isFinite && maxNorm > 0, "clip: max norm \(maxNorm) must be finite and positive")
        let total = try totalNorm(gradients: UnsafeBufferPointer(gradients), extraSquaredNorm: extraSquaredNorm, pool: pool)
        guard total.isFinite else { return (total, .nan) }
        let coef = GradientClipping.coefficient(totalNorm: total, maxNorm: maxNorm)
        if coef < 1 { GradientClipping.scale(gradients.baseAddress!, group: group, by: Float(coef), pool: pool) }
        return (total, coef)
    }
}

public enum GradientClipping {
    /// `min(maxNorm / (total + 1e−6), 1)`.
    public static func coefficient(totalNorm: Double, maxNorm: Double) -> Double {
        min(maxNorm / (totalNorm + 1e-6), 1)
    }

    /// `g *= factor` over the group's tensors.
    public static func scale(_ gradients: UnsafeMutablePointer<Float>, group: ParameterGroup, by factor: Float, pool: WorkerPool? = nil) {
        group.parallelSegments(pool) { _, r in
            for i in r { gradients[i] *= factor }
        }
    }

    /// The first NaN or ±Inf among the group's tensors of `values` (gradients or parameters):
    /// the tensor's name and the index inside it; nil when all are finite.
    public static func firstNonFinite(_ values: UnsafeBufferPointer<Float>, group: ParameterGroup) throws -> (tensor: String, index: Int)? {
        try require(values.count >= group.extent, "finite check: buffer holds \(values.count) floats, the group needs \(group.extent)")
        for t in group.tensors {
            for i in 0..<t.count where !values[t.offset + i].isFinite { return (t.name, i) }
        }
        return nil
    }

    /// True when every value of the group's tensors is finite.
    public static func allFinite(_ values: UnsafeBufferPointer<Float>, group: ParameterGroup) throws -> Bool {
        try firstNonFinite(values, group: group) == nil
    }
}
