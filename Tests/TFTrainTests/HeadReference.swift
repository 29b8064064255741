import Foundation
import TFCore
import TFTestSupport
@testable import TFTrain

/// A plain Double-precision model of the classification head (normalize → cos → clamp → margin →
/// weighted cross entropy) and of EHSM, for finite-difference checks of the Float implementation.
///
/// The margins are straight-through (their value carries no gradient), so the function whose
/// derivative the implementation computes is the surrogate
/// `z_bc = mask_bc · s · clamp(cos_bc(x, W)) + δ_bc`, with `δ` and `mask` (0 where the interclass
/// filter zeroed the logit) frozen at the base point: `HeadSurrogate` is that function.
struct HeadReference {
    let batch: Int, dim: Int, classes: Int
    let margin: MarginConfig
    let labels: [Int]

    static func normalize(_ v: ArraySlice<Double>) -> [Double] {
        let n = max(v.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
        return v.map { $0 / n }
    }

    /// Unclamped cosines `[B × C]`.
    func cosines(x: [Double], w: [Double]) -> [Double] {
        var out = [Double](repeating: 0, count: batch * classes)
        let xs = (0..<batch).map { HeadReference.normalize(x[($0 * dim)..<(($0 + 1) * dim)]) }
        let ws = (0..<classes).map { HeadReference.normalize(w[($0 * dim)..<(($0 + 1) * dim)]) }
        for b in 0..<batch {
            for c in 0..<classes {
                var s = 0.0
                for i in 0..<dim { s += xs[b][i] * ws[c][i] }
                out[b * classes + c] = s
            }
        }
        return out
    }

    /// `(margin logits, mask)` of clamped cosines, in Double (non-targets exact: cos(acos(x)) = x).
    func marginLogits(cos: [Double]) -> (logits: [Double], mask: [Double]) {
        var z = [Double](repeating: 0, count: batch * classes), mask = [Double](repeating: 1, count: batch * classes)
        let s = Double(margin.scale), thr = Double(margin.interclassFilteringThreshold)
        for b in 0..<batch {
            for c in 0..<classes {
                let i = b * classes + c
                var v = min(max(cos[i], -1), 1)
                if c != labels[b] {
                    if thr > 0 && v > thr { v = 0; mask[i] = 0 }
                    z[i] = s * v
                } else {
                    switch margin.kind {
                    case .arcFace: z[i] = s * Foundation.cos(acos(v) + Double(margin.m2))
                    case .cosFace: z[i] = s * (v - Double(margin.m3))
                    case .combined: z[i] = s * (Foundation.cos(Double(margin.m1) * acos(v) + Double(margin.m2)) - Double(margin.m3))
                    }
                }
            }
        }
        return (z, mask)
    }

    /// Per-sample `−log softmax(z)_y`; `floored`: `−log max(p_y, 1e−30)` as the official forward
    /// (its backward ignores the floor, so finite differences use the unfloored value).
    func nll(logits z: [Double], floored: Bool = false) -> [Double] {
        (0..<batch).map { b in
            let row = z[(b * classes)..<((b + 1) * classes)]
            let m = row.max()!
            let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
            let v = lse - z[b * classes + labels[b]]
            return floored ? min(v, -log(Double(Float(1e-30)))) : v
        }
    }

    static func ehsmWeights(sigma: [Double], batch: Int, patches: Int, config: EHSMConfig) -> [Double] {
        let k = config.topK ?? patches
        return (0..<batch).map { b in
            let h = sigma[(b * patches)..<((b + 1) * patches)].map {
                config.entropy == .patchStd ? $0 : 0.5 * log(2 * Double.pi * M_E * $0 * $0)
            }
            let top = h.sorted(by: >).prefix(k)
            return 1 + exp(-Double(config.gamma) * top.reduce(0, +) / Double(k))
        }
    }
}

/// The straight-through surrogate loss around a base point (see `HeadReference`).
struct HeadSurrogate {
    let ref: HeadReference
    let delta: [Double]
    let mask: [Double]
    let baseCos: [Double]

    init(ref: HeadReference, x: [Double], w: [Double]) {
        self.ref = ref
        let cos = ref.cosines(x: x, w: w)
        let (z, mask) = ref.marginLogits(cos: cos)
        let s = Double(ref.margin.scale)
        delta = (0..<z.count).map { z[$0] - mask[$0] * s * min(max(cos[$0], -1), 1) }
        self.mask = mask
        baseCos = cos
    }

    func nll(x: [Double], w: [Double], floored: Bool = false) -> [Double] {
        let cos = ref.cosines(x: x, w: w)
        let s = Double(ref.margin.scale)
        let z = (0..<cos.count).map { mask[$0] * s * min(max(cos[$0], -1), 1) + delta[$0] }
        return ref.nll(logits: z, floored: floored)
    }

    func loss(x: [Double], w: [Double], weights: [Double], floored: Bool = false) -> Double {
        let n = nll(x: x, w: w, floored: floored)
        return zip(n, weights).reduce(0) { $0 + $1.0 * $1.1 } / Double(ref.batch)
    }
}

extension HeadReference {
    /// Central finite differences of `f` with respect to each element of `v`.
    static func finiteDifference(_ v: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
        var out = [Double](repeating: 0, count: v.count)
        var p = v
        for i in 0..<v.count {
            p[i] = v[i] + h
            let up = f(p)
            p[i] = v[i] - h
            let down = f(p)
            p[i] = v[i]
            out[i] = (up - down) / (2 * h)
        }
        return out
    }

    static func randomNormals(_ count: Int, seed: UInt64, stream: UInt64 = 0, std: Double = 1) -> [Double] {
        var rng = SeededRNG(seed: seed, stream: stream)
        return (0..<count).map { _ in rng.normal() * std }
    }

    /// Float copies of Double arrays (exactly representable inputs for both sides).
    static func floats(_ v: [Double]) -> [Float] { v.map { Float($0) } }
    static func doubles(_ v: [Float]) -> [Double] { v.map { Double($0) } }

    /// Integer `.npy` arrays (`<i4`, `<i8`), which `NPYArray` does not read.
    static func loadIntegerNPY(_ relative: String) throws -> [Int] {
        let path = Reference.path(relative) + ".npy"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = [UInt8](data)
        guard bytes.count > 10, bytes[0] == 0x93 else { throw TransFaceError.format("\(path): not an .npy file") }
        let major = bytes[6]
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
            : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        let start = (major == 1 ? 10 : 12) + headerLength
        let header = String(decoding: bytes[0..<start], as: UTF8.self)
        let size: Int
        if header.contains("'<i4'") { size = 4 } else if header.contains("'<i8'") { size = 8 } else {
            throw TransFaceError.format("\(path): not a little-endian int32/int64 array: \(header)")
        }
        guard header.contains("'fortran_order': False") else { throw TransFaceError.format("\(path): Fortran order") }
        let count = (bytes.count - start) / size
        return bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                size == 4 ? Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: start + i * 4, as: Int32.self)))
                    : Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: start + i * 8, as: Int64.self)))
            }
        }
    }
}
