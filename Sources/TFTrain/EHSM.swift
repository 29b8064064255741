#if canImport(Glibc)
import Glibc
#endif
import TFCore

/// Options of EHSM (entropy-guided hard sample mining), the per-sample loss weight computed from
/// the model's patch std `[B × P]` (`patch_entropy`: the unbiased std over the embedding dim of
/// each SE-gated token).
///
/// Official: `w = 1 + exp(−mean over all P patches of patch_std)` (the std itself stands in for
/// the entropy; the Gaussian bound is commented out in the official code), a constant in the
/// backward. Options: the paper's Gaussian entropy bound `H = ½·log(2πe·σ²)` instead of σ,
/// `gamma` (`w = 1 + exp(−γ · mean(top-k H))`), `topK` (k = P officially), and `mode`.
public struct EHSMConfig: Sendable, Equatable {
    public enum Entropy: Sendable, Equatable {
        /// H = σ (official).
        case patchStd
        /// H = ½·log(2πe·σ²), the paper's Gaussian upper bound (σ floored at 1e−12).
        case gaussianBound
    }

    public enum Mode: Sendable, Equatable {
        /// The weight is a constant in the backward (official; `backward` writes zeros).
        case official
        /// The gradient flows through the weight into the patch std (the paper's reading).
        case paper
    }

    public var entropy: Entropy
    public var gamma: Float
    /// Patches averaged (the k largest entropies); nil = all patches (official: 144 of 144).
    public var topK: Int?
    public var mode: Mode

    public init(entropy: Entropy = .patchStd, gamma: Float = 1, topK: Int? = nil, mode: Mode = .official) {
        self.entropy = entropy
        self.gamma = gamma
        self.topK = topK
        self.mode = mode
    }

    public static let official = EHSMConfig()
}

/// EHSM sample weights and, in `paper` mode, their backward into the patch std. Holds a small
/// scratch buffer: use one instance per thread.
public final class EHSM {
    public let config: EHSMConfig
    public let patches: Int
    public let k: Int
    public static let stdFloor = 1e-12
    /// ½·log(2πe)
    public static let gaussianOffset = 0.5 * log(2 * Double.pi * exp(1.0))

    private let order: UnsafeMutablePointer<Int32>
    private let entropy: UnsafeMutablePointer<Double>

    public init(config: EHSMConfig = .official, patches: Int) throws {
        try require(patches >= 1, "ehsm: patch count \(patches) must be positive")
        try require(config.gamma.isFinite, "ehsm: gamma \(config.gamma) must be finite")
        let k = config.topK ?? patches
        try require(k >= 1 && k <= patches, "ehsm: top-k \(k) is outside 1...\(patches)")
        self.config = config
        self.patches = patches
        self.k = k
        order = .allocate(capacity: patches)
        entropy = .allocate(capacity: patches)
    }

    deinit {
        order.deallocate()
        entropy.deallocate()
    }

    /// Weights `w_b` for `batch` rows of `patchStd [batch × patches]`.
    public func weights(patchStd: UnsafeBufferPointer<Float>, batch: Int, into out: UnsafeMutableBufferPointer<Float>) throws {
        try check(patchStd.count, batch)
        try require(out.count >= batch, "ehsm: weight buffer holds \(out.count), needs \(batch)")
        for b in 0..<batch {
            let mean = selectAndMean(patchStd.baseAddress! + b * patches)
            out[b] = Float(1 + exp(-Double(config.gamma) * mean))
        }
    }

    /// dL/d(patch std) `[batch × patches]` (overwritten) from dL/dw_b: in `paper` mode
    /// `dL/dw_b · (−γ·exp(−γ·mean_b)/k) · dH/dσ` on the top-k patches and 0 elsewhere (dH/dσ is
    /// 1 for the std, 1/σ for the Gaussian bound); zeros in `official` mode.
    public func backward(patchStd: UnsafeBufferPointer<Float>, batch: Int, weightGradient: UnsafeBufferPointer<Float>,
                         into out: UnsafeMutableBufferPointer<Float>) throws {
        try check(patchStd.count, batch)
        try require(weightGradient.count >= batch, "ehsm: weight gradient holds \(weightGradient.count), needs \(batch)")
        try require(out.count >= batch * patches, "ehsm: patch std gradient holds \(out.count), needs \(batch)×\(patches)")
        let o = out.baseAddress!
        o.update(repeating: 0, count: batch * patches)
        guard config.mode == .paper else { return }
        let gamma = Double(config.gamma)
        for b in 0..<batch {
            let sigma = patchStd.baseAddress! + b * patches
            let mean = selectAndMean(sigma)
            let coefficient = Double(weightGradient[b]) * (-gamma * exp(-gamma * mean) / Double(k))
            for j in 0..<k {
                let p = k == patches ? j : Int(order[j])
                var d = coefficient
                if config.entropy == .gaussianBound {
                    let s = Double(sigma[p])
                    d = s > Self.stdFloor ? d / s : 0
                }
                o[b * patches + p] = Float(d)
            }
        }
    }

    /// Allocating convenience.
    public func weights(patchStd: [Float], batch: Int) throws -> [Float] {
        var out = [Float](repeating: 0, count: batch)
        try patchStd.withUnsafeBufferPointer { p in try out.withUnsafeMutableBufferPointer { try weights(patchStd: p, batch: batch, into: $0) } }
        return out
    }

    private func check(_ count: Int, _ batch: Int) throws {
        try require(batch >= 1, "ehsm: batch \(batch) must be positive")
        try require(count >= batch * patches, "ehsm: patch std holds \(count) floats, needs \(batch)×\(patches)")
    }

    /// Entropies of one row into `entropy`, the top-k into `order[0..<k]` (when k < P), and their mean.
    private func selectAndMean(_ sigma: UnsafePointer<Float>) -> Double {
        for p in 0..<patches {
            let s = Double(sigma[p])
            entropy[p] = config.entropy == .patchStd ? s : Self.gaussianOffset + log(max(s, Self.stdFloor))
        }
        var sum = 0.0
        if k == patches {
            for p in 0..<patches { sum += entropy[p] }
        } else {
            // Insertion sort of indices by entropy, descending (ties: lower index first).
            for p in 0..<patches {
                var j = p
                let v = entropy[p]
                while j > 0 && entropy[Int(order[j - 1])] < v {
                    order[j] = order[j - 1]
                    j -= 1
                }
                order[j] = Int32(p)
            }
            for j in 0..<k { sum += entropy[Int(order[j])] }
        }
        return sum / Double(k)
    }
}
