import TFCore

// Backward halves of the forward kernels. Conventions: gradients of inputs named `d…` are
// written (`=`) unless the name says `Accumulate`; parameter gradients always accumulate (`+=`).
// Row-parallel kernels take row ranges; parameter reductions take column ranges so that each
// worker owns whole output values and results do not depend on the order workers finish.

/// LayerNorm input gradient, accumulated: `dx += rstd·(dŷ − mean(dŷ) − x̂·mean(dŷ·x̂))`, `dŷ = dout·w`.
public func layerNormBackwardInputAccumulate(
    dx: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>, x: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, weight: UnsafePointer<Float>, rows: Int, dim: Int
) {
    let n = Float(dim)
    for r in 0..<rows {
        let xr = x + r * dim, dr = dout + r * dim, dxr = dx + r * dim
        let mu = mean[r], rs = rstd[r]
        var sumD: Float = 0, sumDX: Float = 0
        for i in 0..<dim {
            let dy = dr[i] * weight[i]
            sumD += dy
            sumDX += dy * (xr[i] - mu) * rs
        }
        let meanD = sumD / n, meanDX = sumDX / n
        for i in 0..<dim {
            let xhat = (xr[i] - mu) * rs
            dxr[i] += rs * (dr[i] * weight[i] - meanD - xhat * meanDX)
        }
    }
}

/// LayerNorm parameter gradients for features `features`: `dweight += Σ dout·x̂`, `dbias += Σ dout`.
public func layerNormBackwardParams(
    dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
    x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>, rows: Int, dim: Int,
    features: Range<Int>
) {
    for r in 0..<rows {
        let xr = x + r * dim, dr = dout + r * dim, mu = mean[r], rs = rstd[r]
        for i in features {
            dweight[i] += dr[i] * (xr[i] - mu) * rs
            dbias[i] += dr[i]
        }
    }
}

/// `dbias[c] += Σ_r dy[r, c]` for columns `columns`.
public func columnSumAccumulate(
    _ dbias: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, rows: Int, cols: Int, columns: Range<Int>
) {
    for r in 0..<rows {
        let row = dy + r * cols
        for c in columns { dbias[c] += row[c] }
    }
}

/// ReLU6 backward in place from the activation's output `a`: gradient passes where 0 < a < 6.
public func relu6Backward(_ d: UnsafeMutablePointer<Float>, output a: UnsafePointer<Float>, count: Int) {
    for i in 0..<count where !(a[i] > 0 && a[i] < 6) { d[i] = 0 }
}

/// ReLU backward in place from the output: gradient passes where a > 0.
public func reluBackward(_ d: UnsafeMutablePointer<Float>, output a: UnsafePointer<Float>, count: Int) {
    for i in 0..<count where !(a[i] > 0) { d[i] = 0 }
}

/// Sigmoid backward in place from the output: `d *= s·(1 − s)`.
public func sigmoidBackward(_ d: UnsafeMutablePointer<Float>, output s: UnsafePointer<Float>, count: Int) {
    for i in 0..<count { d[i] *= s[i] * (1 - s[i]) }
}

/// Unbiased row std backward, accumulated: `dx += dstd·(x − μ)/((n − 1)·std)` (0 where std is 0).
public func rowStdBackwardAccumulate(
    dx: UnsafeMutablePointer<Float>, dstd: UnsafePointer<Float>, x: UnsafePointer<Float>,
    std: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows where std[r] > 0 {
        let xr = x + r * cols, dxr = dx + r * cols
        let mu = simdSum(xr, cols) / Float(cols)
        let k = dstd[r] / (Float(cols - 1) * std[r])
        for i in 0..<cols { dxr[i] += k * (xr[i] - mu) }
    }
}

/// SE gating backward (`gated = x · s[row]`): `dx = dgated · s` (written) and
/// `ds[row] = Σ dgated · x`.
public func scaleRowsBackward(
    dx: UnsafeMutablePointer<Float>, dscale: UnsafeMutablePointer<Float>, dgated: UnsafePointer<Float>,
    x: UnsafePointer<Float>, scale: UnsafePointer<Float>, rows: Int, cols: Int
) {
    for r in 0..<rows {
        let g = dgated + r * cols, xr = x + r * cols, dxr = dx + r * cols, s = scale[r]
        var acc: Float = 0
        for i in 0..<cols {
            dxr[i] = g[i] * s
            acc += g[i] * xr[i]
        }
        dscale[r] = acc
    }
}

/// BatchNorm1d backward with batch statistics (train mode): writes `dx`, accumulates
/// `dweight`, `dbias`. `mean`/`rstd` are the statistics the forward pass used.
public func batchNormTrainBackward(
    dx: UnsafeMutablePointer<Float>, dweight: UnsafeMutablePointer<Float>, dbias: UnsafeMutablePointer<Float>,
    dy: UnsafePointer<Float>, x: UnsafePointer<Float>, mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
    weight: UnsafePointer<Float>, rows: Int, features: Int
) {
    let n = Float(rows)
    for f in 0..<features {
        var sumDy: Float = 0, sumDyX: Float = 0
        for r in 0..<rows {
            let i = r * features + f
            sumDy += dy[i]
            sumDyX += dy[i] * (x[i] - mean[f]) * rstd[f]
        }
        dweight[f] += sumDyX
        dbias[f] += sumDy
        let k = weight[f] * rstd[f] / n
        for r in 0..<rows {
            let i = r * features + f
            let xhat = (x[i] - mean[f]) * rstd[f]
            dx[i] = k * (n * dy[i] - sumDy - xhat * sumDyX)
        }
    }
}

/// Attention backward for one image and head: from `dout` (the head's columns of [tokens × dim])
/// and the forward probabilities, writes the head's q, k and v columns of `dqkv` [tokens × 3·dim].
/// `scratch` holds tokens² floats.
public func attentionHeadBackward(
    dqkv: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
    probs: UnsafePointer<Float>, qkv: UnsafePointer<Float>, tokens: Int, dim: Int, heads: Int, head: Int
) {
    let hd = dim / heads, ld = 3 * dim
    let q = qkv + head * hd, k = qkv + dim + head * hd, v = qkv + 2 * dim + head * hd
    let dq = dqkv + head * hd, dk = dqkv + dim + head * hd, dv = dqkv + 2 * dim + head * hd
    let dO = dout + head * hd
    let scale = 1 / Float(hd).squareRoot()
    // dV = Pᵀ·dO, dP = dO·Vᵀ
    BLAS.gemm(m: tokens, n: hd, k: tokens, a: probs, lda: tokens, b: dO, ldb: dim, transposeB: false,
              c: dv, ldc: ld, transposeA: true)
    BLAS.gemm(m: tokens, n: tokens, k: hd, a: dO, lda: dim, b: v, ldb: ld, transposeB: true, c: scratch, ldc: tokens)
    // dS = P ⊙ (dP − rowsum(dP ⊙ P))
    for i in 0..<tokens {
        let p = probs + i * tokens, ds = scratch + i * tokens
        var dot: Float = 0
        for j in 0..<tokens { dot += ds[j] * p[j] }
        for j in 0..<tokens { ds[j] = p[j] * (ds[j] - dot) }
    }
    // dQ = scale·dS·K, dK = scale·dSᵀ·Q
    BLAS.gemm(m: tokens, n: hd, k: tokens, a: scratch, lda: tokens, b: k, ldb: ld, transposeB: false,
              c: dq, ldc: ld, alpha: scale)
    BLAS.gemm(m: tokens, n: hd, k: tokens, a: scratch, lda: tokens, b: q, ldb: ld, transposeB: false,
              c: dk, ldc: ld, alpha: scale, transposeA: true)
}
