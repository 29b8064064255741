import TFCore

/// Wall time of a forward pass split by op class, accumulated over calls (for `transface bench`;
/// pass one to `ViTForward.run`). Each class is timed around whole parallel sections, so the
/// classes add up to the pass's wall time minus a little bookkeeping.
public final class OpProfile {
    /// The op classes: token-wise GEMMs (patch embedding, qkv, proj, fc1, fc2), attention
    /// (QKᵀ, softmax, PV), LayerNorm/BatchNorm, elementwise work (pixel normalisation, bias,
    /// activations, residuals, gating, token std) and the head (SE and feature Linears).
    public enum Kind: Int, CaseIterable, Sendable {
        case gemm, attention, norms, elementwise, head

        public var name: String { ["gemm", "attention", "norms", "elementwise", "head"][rawValue] }
    }

    /// Seconds spent in each class, indexed by `Kind.rawValue`.
    public private(set) var seconds = [Double](repeating: 0, count: Kind.allCases.count)

    public init() {}

    /// Seconds of all classes together.
    public var total: Double { seconds.reduce(0, +) }

    /// Runs `body`, adding its wall time to `kind`.
    @inline(__always)
    func time(_ kind: Kind, _ body: () throws -> Void) rethrows {
        let t0 = monotonicSeconds()
        defer { seconds[kind.rawValue] += monotonicSeconds() - t0 }
        try body()
    }
}

extension Optional where Wrapped == OpProfile {
    /// Runs `body`, timed into `kind` when a profile is present.
    @inline(__always)
    func time(_ kind: OpProfile.Kind, _ body: () throws -> Void) rethrows {
        if let p = self { try p.time(kind, body) } else { try body() }
    }
}

extension ViTConfig {
    /// Floating-point operations of one image's forward pass in each op class (a multiply-add
    /// counts 2; only matrix products are counted, so norms and elementwise work count 0).
    public var forwardFLOPs: [OpProfile.Kind: Double] {
        let t = Double(numPatches), d = Double(embedDim), h = Double(mlpHiddenDim), e = Double(embeddingSize)
        let gemm = t * Double(patchValues) * d + Double(depth) * (t * d * 3 * d + t * d * d + 2 * t * d * h)
        let attention = Double(depth) * 2 * t * t * d
        let head = (seGate ? t * d * t + t * t : 0) + t * d * d + d * e
        return [.gemm: 2 * gemm, .attention: 2 * attention, .head: 2 * head, .norms: 0, .elementwise: 0]
    }
}
