/// `out[r, o] = Σ_k x[r, k] · w[o, k]` for outputs `o` in `outputs`, every row of `x`
/// (PyTorch Linear without bias, W stored [outFeatures × inFeatures]). For few rows and long
/// rows (the SE and head layers). Rows are processed four at a time sharing each weight load,
/// with the same arithmetic for every row, so a row's result never depends on the others.
public func rowLinearForward(
    out: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
    rows: Int, inFeatures k: Int, outFeatures: Int, outputs: Range<Int>
) {
    var r0 = 0
    while r0 < rows {
        let n = min(4, rows - r0)
        // Missing rows of the last group repeat a real row; their results are not stored.
        let x0 = x + r0 * k, x1 = x + (r0 + min(1, n - 1)) * k
        let x2 = x + (r0 + min(2, n - 1)) * k, x3 = x + (r0 + min(3, n - 1)) * k
        for o in outputs {
            let w = weight + o * k
            var a0 = SIMD16<Float>(), b0 = SIMD16<Float>(), a1 = SIMD16<Float>(), b1 = SIMD16<Float>()
            var a2 = SIMD16<Float>(), b2 = SIMD16<Float>(), a3 = SIMD16<Float>(), b3 = SIMD16<Float>()
            var i = 0
            while i + 32 <= k {
                let wa = w.load16(i), wb = w.load16(i + 16)
                a0.addProduct(x0.load16(i), wa); b0.addProduct(x0.load16(i + 16), wb)
                a1.addProduct(x1.load16(i), wa); b1.addProduct(x1.load16(i + 16), wb)
                a2.addProduct(x2.load16(i), wa); b2.addProduct(x2.load16(i + 16), wb)
                a3.addProduct(x3.load16(i), wa); b3.addProduct(x3.load16(i + 16), wb)
                i += 32
            }
            var s0 = (a0 + b0).sum(), s1 = (a1 + b1).sum(), s2 = (a2 + b2).sum(), s3 = (a3 + b3).sum()
            while i < k {
                let wi = w[i]
                s0 += x0[i] * wi; s1 += x1[i] * wi; s2 += x2[i] * wi; s3 += x3[i] * wi
                i += 1
            }
            let dst = out + r0 * outFeatures + o
            dst[0] = s0
            if n > 1 { dst[outFeatures] = s1 }
            if n > 2 { dst[2 * outFeatures] = s2 }
            if n > 3 { dst[3 * outFeatures] = s3 }
        }
        r0 += 4
    }
}
