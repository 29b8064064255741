import TFCore

/// Floats of per-worker scratch `attentionHeadForward` needs: the head's keys transposed.
public func attentionScratchCount(tokens: Int, headDim: Int) -> Int { headDim * ((tokens + 15) / 16 * 16) }

/// Multi-head self-attention of one image and one head, from the packed qkv projection.
/// `qkv` is [tokens × 3·dim] laid out (q|k|v, head, headDim) as PyTorch's reshape(B, N, 3, H, hd);
/// writes the head's output columns of `out` [tokens × dim] and its probabilities to
/// `probs` [tokens × tokens] (kept for the backward pass, or scratch). Head sizes that are a
/// multiple of 16 (every preset's) run register-tiled FMA loops over the keys transposed
/// into `scratch` (`attentionScratchCount` floats); others go through OpenBLAS.
public func attentionHeadForward(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, tokens: Int, dim: Int, heads: Int, head: Int, scratch: UnsafeMutablePointer<Float>
) {
    let hd = dim / heads
    let q = qkv + head * hd, k = qkv + dim + head * hd, v = qkv + 2 * dim + head * hd
    let scale = 1 / Float(hd).squareRoot()
    guard hd % 16 == 0 else {
        BLAS.gemm(m: tokens, n: tokens, k: hd, a: q, lda: 3 * dim, b: k, ldb: 3 * dim, transposeB: true,
                  c: probs, ldc: tokens, alpha: scale)
        softmaxRowsForward(probs, rows: tokens, cols: tokens)
        BLAS.gemm(m: tokens, n: hd, k: tokens, a: UnsafePointer(probs), lda: tokens, b: v, ldb: 3 * dim, transposeB: false,
                  c: out + head * hd, ldc: dim)
        return
    }
    let stride = (tokens + 15) / 16 * 16
    // keysT[c, j] = k[j, c]; columns past the last token are zero.
    for c in 0..<hd {
        let row = scratch + c * stride
        for j in 0..<tokens { row[j] = k[j * 3 * dim + c] }
        for j in tokens..<stride { row[j] = 0 }
    }
    // Scores (the key columns past the last token are zero padding, never stored), softmax, PV.
    tiledProduct(out: probs, ldo: tokens, a: q, lda: 3 * dim, b: scratch, ldb: stride, rows: tokens, cols: tokens,
                 depth: hd, scale: scale)
    softmaxRowsForward(probs, rows: tokens, cols: tokens)
    tiledProduct(out: out + head * hd, ldo: dim, a: probs, lda: tokens, b: v, ldb: 3 * dim, rows: tokens, cols: hd,
                 depth: tokens, scale: 1)
}

/// out[i, j] = scale · Σ_t a[i, t] · b[t, j] for `rows × cols` (row strides `ldo`, `lda`, `ldb`),
/// six rows × 16 columns per register tile, fused multiply-adds in t order.
private func tiledProduct(out: UnsafeMutablePointer<Float>, ldo: Int, a: UnsafePointer<Float>, lda: Int,
                          b: UnsafePointer<Float>, ldb: Int, rows: Int, cols: Int, depth: Int, scale: Float) {
    let sv = SIMD16<Float>(repeating: scale)
    var r0 = 0
    while r0 < rows {
        let n = min(6, rows - r0)
        // Missing rows of the last group repeat a real row; their results are not stored.
        let a0 = a + r0 &* lda, a1 = a + (r0 + min(1, n - 1)) &* lda, a2 = a + (r0 + min(2, n - 1)) &* lda
        let a3 = a + (r0 + min(3, n - 1)) &* lda, a4 = a + (r0 + min(4, n - 1)) &* lda, a5 = a + (r0 + min(5, n - 1)) &* lda
        var c0 = 0
        while c0 < cols {
            var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>()
            var s3 = SIMD16<Float>(), s4 = SIMD16<Float>(), s5 = SIMD16<Float>()
            var bt = b + c0
            for t in 0..<depth {
                let b16 = bt.load16(0)
                s0.addProduct(SIMD16(repeating: a0[t]), b16)
                s1.addProduct(SIMD16(repeating: a1[t]), b16)
                s2.addProduct(SIMD16(repeating: a2[t]), b16)
                s3.addProduct(SIMD16(repeating: a3[t]), b16)
                s4.addProduct(SIMD16(repeating: a4[t]), b16)
                s5.addProduct(SIMD16(repeating: a5[t]), b16)
                bt += ldb
            }
            let width = min(16, cols - c0), dst = out + r0 * ldo + c0
            storePrefix(s0 * sv, width, dst)
            if n > 1 { storePrefix(s1 * sv, width, dst + ldo) }
            if n > 2 { storePrefix(s2 * sv, width, dst + 2 * ldo) }
            if n > 3 { storePrefix(s3 * sv, width, dst + 3 * ldo) }
            if n > 4 { storePrefix(s4 * sv, width, dst + 4 * ldo) }
            if n > 5 { storePrefix(s5 * sv, width, dst + 5 * ldo) }
            c0 += 16
        }
        r0 += 6
    }
}

/// Stores the first `width` lanes of `v` at `dst`.
@inline(__always)
private func storePrefix(_ v: SIMD16<Float>, _ width: Int, _ dst: UnsafeMutablePointer<Float>) {
    if width == 16 { dst.store16(v, 0); return }
    for i in 0..<width { dst[i] = v[i] }
}
