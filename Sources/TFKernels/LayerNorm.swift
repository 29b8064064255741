/// LayerNorm over the last dimension: `out = (x − mean) · rstd · weight + bias` per row,
/// with the biased variance and `rstd = 1/sqrt(var + eps)` (PyTorch's nn.LayerNorm).
/// `mean` and `rstd` (one per row) are written when given, for the backward pass.
public func layerNormForward(
    out: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>?, rstd: UnsafeMutablePointer<Float>?,
    x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    rows: Int, dim: Int, eps: Float
) {
    let n = Float(dim)
    for r in 0..<rows {
        let xr = x + r * dim, orow = out + r * dim
        let mu = simdSum(xr, dim) / n
        var acc = SIMD16<Float>()
        var i = 0
        let muv = SIMD16<Float>(repeating: mu)
        while i + 16 <= dim { let d = xr.load16(i) - muv; acc += d * d; i += 16 }
        var v = acc.sum()
        while i < dim { let d = xr[i] - mu; v += d * d; i += 1 }
        let rs = 1 / (v / n + eps).squareRoot()
        mean?[r] = mu
        rstd?[r] = rs
        let rsv = SIMD16<Float>(repeating: rs)
        i = 0
        while i + 16 <= dim {
            orow.store16((xr.load16(i) - muv) * rsv * weight.load16(i) + bias.load16(i), i)
            i += 16
        }
        while i < dim { orow[i] = (xr[i] - mu) * rs * weight[i] + bias[i]; i += 1 }
    }
}
