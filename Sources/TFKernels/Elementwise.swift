/// Activation applied after a bias add.
public enum Activation: Sendable { case none, relu, relu6, sigmoid }

/// `x[r, c] = act(x[r, c] + bias[c])` over `rows × cols` (bias may be nil).
public func biasActivationForward(
    _ x: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, rows: Int, cols: Int, activation: Activation
) {
    let zero = SIMD16<Float>(repeating: 0), six = SIMD16<Float>(repeating: 6)
    for r in 0..<rows {
        let row = x + r * cols
        var i = 0
        switch activation {
        case .none, .relu, .relu6:
            while i + 16 <= cols {
                var v = row.load16(i)
                if let bias { v += bias.load16(i) }
                if activation != .none { v.replace(with: zero, where: v .< zero) }
                if activation == .relu6 { v.replace(with: six, where: v .> six) }
                row.store16(v, i)
                i += 16
            }
            while i < cols {
                var v = row[i] + (bias?[i] ?? 0)
                if activation != .none { v = v < 0 ? 0 : v }
                if activation == .relu6 { v = v > 6 ? 6 : v }
                row[i] = v
                i += 1
            }
        case .sigmoid:
            while i < cols {
                let v = row[i] + (bias?[i] ?? 0)
                row[i] = 1 / (1 + expf(-v))
                i += 1
            }
        }
    }
}

/// Row-wise softmax in place over `rows × cols`, max-subtracted; `fastExp` 16 lanes at a time.
public func softmaxRowsForward(_ x: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let row = x + r * cols
        var mv = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= cols { let v = row.load16(i); mv.replace(with: v, where: v .> mv); i += 16 }
        var m = mv.max()
        while i < cols { m = max(m, row[i]); i += 1 }
        let m16 = SIMD16<Float>(repeating: m)
        var sv = SIMD16<Float>()
        i = 0
        while i + 16 <= cols { let e = fastExp(row.load16(i) - m16); row.store16(e, i); sv += e; i += 16 }
        var s = sv.sum()
        while i < cols { let e = expf(row[i] - m); row[i] = e; s += e; i += 1 }
        let inv = SIMD16<Float>(repeating: 1 / s)
        i = 0
        while i + 16 <= cols { row.store16(row.load16(i) * inv, i); i += 16 }
        while i < cols { row[i] *= inv[0]; i += 1 }
    }
}

/// Unbiased standard deviation (divisor n − 1) of each row: `out[r] = std(x[r, :])`.
public func rowStdForward(out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, cols: Int) {
    let n = Float(cols)
    for r in 0..<rows {
        let row = x + r * cols
        let mu = simdSum(row, cols) / n
        let muv = SIMD16<Float>(repeating: mu)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= cols { let d = row.load16(i) - muv; acc += d * d; i += 16 }
        var v = acc.sum()
        while i < cols { let d = row[i] - mu; v += d * d; i += 1 }
        out[r] = (v / (n - 1)).squareRoot()
    }
}

/// `out[r, c] = x[r, c] · scale[r]`: SE gating of each token by its patch weight.
public func scaleRowsForward(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, scale: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let s = SIMD16<Float>(repeating: scale[r])
        let xr = x + r * cols, orow = out + r * cols
        var i = 0
        while i + 16 <= cols { orow.store16(xr.load16(i) * s, i); i += 16 }
        while i < cols { orow[i] = xr[i] * scale[r]; i += 1 }
    }
}

/// `x[i] += add[i]` for `count` floats.
public func addInPlaceForward(_ x: UnsafeMutablePointer<Float>, _ add: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count { x.store16(x.load16(i) + add.load16(i), i); i += 16 }
    while i < count { x[i] += add[i]; i += 1 }
}

/// Residual branch end: `out[r, :] = x[r, :] + scale·y[r, :]` (`out` may be `x`; `scale` is
/// stochastic depth's 0 or 1/keep_prob, 1 otherwise).
public func residualForward(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, y: UnsafePointer<Float>, rows: Int, cols: Int,
    scale: Float = 1
) {
    let sv = SIMD16<Float>(repeating: scale)
    for r in 0..<rows {
        let xr = x + r * cols, yr = y + r * cols, orow = out + r * cols
        var i = 0
        while i + 16 <= cols {
            let v = yr.load16(i)
            orow.store16(scale == 1 ? xr.load16(i) + v : xr.load16(i) + v * sv, i)
            i += 16
        }
        while i < cols { let v = yr[i]; orow[i] = scale == 1 ? xr[i] + v : xr[i] + v * scale; i += 1 }
    }
}

#if canImport(Glibc)
import Glibc
#endif
