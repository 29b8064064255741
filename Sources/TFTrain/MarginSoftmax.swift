#if canImport(Glibc)
import Glibc
#endif
import TFCore

/// The margin of the classification head, as arcface_torch's `CombinedMarginLoss(s, m1, m2, m3,
/// interclass_filtering_threshold)` applies it to the clamped cosine logits.
///
/// - `arcFace` (m1 = 1, m3 = 0): computed exactly as the official code does under `no_grad`: every
///   logit goes through `acos`, the target gets `+ m2`, every logit goes back through `cos` (so a
///   non-target logit is `cos(acos(x))` in float32, a few ulps from `x`), times `s`.
/// - `cosFace` (m3 > 0): the target becomes `x − m3`, times `s` (non-targets untouched).
/// - `combined`: `cos(m1·θ + m2) − m3` on the target, non-targets `cos(acos(x))`, times `s`. The
///   official code raises for m1 ≠ 1 with m3 = 0; we support it with the ArcFace treatment.
///
/// Backward is the official straight-through gradient for every kind: `d margin / d cos = s` for
/// every class (the margin itself carries no gradient), zero where the interclass filter zeroed the
/// logit, and zero where the clamp to [−1, 1] was active (`torch.clamp` passes where
/// `−1 ≤ x ≤ 1`).
public struct MarginConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case arcFace, cosFace, combined }

    public let kind: Kind
    public let scale: Float
    public let m1: Float
    public let m2: Float
    public let m3: Float
    /// Non-target logits above this (for rows with a label) are zeroed before the margin, as the
    /// official `interclass_filtering_threshold`; ≤ 0 disables it (the official test is `> 0`).
    public let interclassFilteringThreshold: Float
    /// ArcFace/combined only: `true` (official) sends non-target logits through `cos(acos(x))` in
    /// float32; `false` keeps `x` (differs by a few ulps, saves two transcendentals per logit).
    public var roundTripNonTargets: Bool = true

    public init(kind: Kind, scale: Float = 64, m1: Float = 1, m2: Float = 0, m3: Float = 0,
                interclassFilteringThreshold: Float = 0) throws {
        try require(scale.isFinite && scale > 0, "margin: scale \(scale) must be finite and positive")
        try require(m1.isFinite && m2.isFinite && m3.isFinite, "margin: margins (\(m1), \(m2), \(m3)) must be finite")
        try require(interclassFilteringThreshold.isFinite,
                    "margin: interclass filtering threshold \(interclassFilteringThreshold) must be finite")
        self.kind = kind
        self.scale = scale
        self.m1 = kind == .combined ? m1 : 1
        self.m2 = kind == .cosFace ? 0 : m2
        self.m3 = kind == .arcFace ? 0 : m3
        self.interclassFilteringThreshold = interclassFilteringThreshold
    }

    /// ArcFace `cos(θ + m)`, the TransFace default (s 64, m 0.5).
    public static func arcFace(scale: Float = 64, margin: Float = 0.5, interclassFilteringThreshold: Float = 0) throws -> MarginConfig {
        try MarginConfig(kind: .arcFace, scale: scale, m2: margin, interclassFilteringThreshold: interclassFilteringThreshold)
    }

    /// CosFace `cos θ − m`.
    public static func cosFace(scale: Float = 64, margin: Float = 0.35, interclassFilteringThreshold: Float = 0) throws -> MarginConfig {
        try MarginConfig(kind: .cosFace, scale: scale, m3: margin, interclassFilteringThreshold: interclassFilteringThreshold)
    }

    /// `cos(m1·θ + m2) − m3` on the target.
    public static func combined(scale: Float = 64, m1: Float, m2: Float, m3: Float, interclassFilteringThreshold: Float = 0) throws -> MarginConfig {
        try MarginConfig(kind: .combined, scale: scale, m1: m1, m2: m2, m3: m3, interclassFilteringThreshold: interclassFilteringThreshold)
    }

    /// The official dispatch of a config's `margin_list = (m1, m2, m3)`: m1 = 1 and m3 = 0 is
    /// ArcFace(m2); m3 > 0 is CosFace(m3), ignoring m1 and m2 as the official code does; anything
    /// else (where the official code raises) is `combined`.
    public static func official(m1: Float, m2: Float, m3: Float, scale: Float = 64, interclassFilteringThreshold: Float = 0) throws -> MarginConfig {
        if m1 == 1 && m3 == 0 { return try arcFace(scale: scale, margin: m2, interclassFilteringThreshold: interclassFilteringThreshold) }
        if m3 > 0 { return try cosFace(scale: scale, margin: m3, interclassFilteringThreshold: interclassFilteringThreshold) }
        return try combined(scale: scale, m1: m1, m2: m2, m3: m3, interclassFilteringThreshold: interclassFilteringThreshold)
    }
}

/// Row kernels of the margin softmax head over raw (unclamped) cosine logits.
public enum MarginSoftmax {
    @inline(__always)
    static func clampUnit(_ x: Float) -> Float { x < -1 ? -1 : (x > 1 ? 1 : x) }  // NaN stays NaN

    /// One row: `out[c] = margin(clamp(raw[c]))` for `classes` logits with target `label`
    /// (−1: no target in this row, so only the filter applies and every logit is a non-target).
    public static func forwardRow(_ config: MarginConfig, raw: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                                  classes: Int, label: Int) {
        let s = config.scale
        let thr = config.interclassFilteringThreshold
        let filter = thr > 0
        switch config.kind {
        case .cosFace:
            for c in 0..<classes {
                var v = clampUnit(raw[c])
                if filter && c != label && v > thr { v = 0 }
                out[c] = v * s
            }
            if label >= 0 { out[label] = (clampUnit(raw[label]) - config.m3) * s }
        case .arcFace, .combined:
            let roundTrip = config.roundTripNonTargets
            for c in 0..<classes {
                var v = clampUnit(raw[c])
                if filter && c != label && v > thr { v = 0 }
                out[c] = (roundTrip ? cosf(acosf(v)) : v) * s
            }
            if label >= 0 {
                let theta = acosf(clampUnit(raw[label]))
                if config.kind == .arcFace {
                    out[label] = cosf(theta + config.m2) * s
                } else {
                    out[label] = (cosf(config.m1 * theta + config.m2) - config.m3) * s
                }
            }
        }
    }

    /// One row of the straight-through backward, in place: `g[c] ← g[c] · s` where the logit
    /// passed the clamp and was not filtered, else 0. `g` holds dL/d(margin logit) on entry and
    /// dL/d(raw cosine) on return.
    public static func backwardRow(_ config: MarginConfig, raw: UnsafePointer<Float>, gradient g: UnsafeMutablePointer<Float>,
                                   classes: Int, label: Int) {
        let s = config.scale
        let thr = config.interclassFilteringThreshold
        let filter = thr > 0
        for c in 0..<classes {
            let x = raw[c]
            var pass = x >= -1 && x <= 1
            if filter && c != label && clampUnit(x) > thr { pass = false }
            g[c] = pass ? g[c] * s : 0
        }
    }
}
