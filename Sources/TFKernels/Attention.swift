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
    scoresForward(probs: probs, q: q, ldq: 3 * dim, keysT: scratch, stride: stride, tokens: tokens, hd: hd, scale: scale)
    softmaxRowsForward(probs, rows: tokens, cols: tokens)
    valuesForward(out: out + head * hd, ldo: dim, probs: probs, v: v, ldv: 3 * dim, tokens: tokens, hd: hd)
}

/// probs[i, j] = scale · q_i · k_j, six query rows × 16 keys per register tile.
private func scoresForward(probs: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, ldq: Int,
                           keysT: UnsafePointer<Float>, stride: Int, tokens: Int, hd: Int, scale: Float) {
    let sv = SIMD16<Float>(repeating: scale)
    var r0 = 0
    while r0 < tokens {
        let n = min(6, tokens - r0)
        // Missing rows of the last group repeat a real row; their results are not stored.
        let q0 = q + r0 &* ldq, q1 = q + (r0 + min(1, n - 1)) &* ldq, q2 = q + (r0 + min(2, n - 1)) &* ldq
        let q3 = q + (r0 + min(3, n - 1)) &* ldq, q4 = q + (r0 + min(4, n - 1)) &* ldq, q5 = q + (r0 + min(5, n - 1)) &* ldq
        var j0 = 0
        while j0 < tokens {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>()
            var a3 = SIMD16<Float>(), a4 = SIMD16<Float>(), a5 = SIMD16<Float>()
            var kt = keysT + j0
            for c in 0..<hd {
                let k16 = kt.load16(0)
                a0.addProduct(SIMD16(repeating: q0[c]), k16)
                a1.addProduct(SIMD16(repeating: q1[c]), k16)
                a2.addProduct(SIMD16(repeating: q2[c]), k16)
                a3.addProduct(SIMD16(repeating: q3[c]), k16)
                a4.addProduct(SIMD16(repeating: q4[c]), k16)
                a5.addProduct(SIMD16(repeating: q5[c]), k16)
                kt += stride
            }
            let width = min(16, tokens - j0), dst = probs + r0 * tokens + j0
            storePrefix(a0 * sv, width, dst)
            if n > 1 { storePrefix(a1 * sv, width, dst + tokens) }
            if n > 2 { storePrefix(a2 * sv, width, dst + 2 * tokens) }
            if n > 3 { storePrefix(a3 * sv, width, dst + 3 * tokens) }
            if n > 4 { storePrefix(a4 * sv, width, dst + 4 * tokens) }
            if n > 5 { storePrefix(a5 * sv, width, dst + 5 * tokens) }
            j0 += 16
        }
        r0 += 6
    }
}

/// out[i, 0..<hd] = Σ_j probs[i, j] · v_j, six rows × 16 columns per register tile.
private func valuesForward(out: UnsafeMutablePointer<Float>, ldo: Int, probs: UnsafePointer<Float>,
                           v: UnsafePointer<Float>, ldv: Int, tokens: Int, hd: Int) {
    var r0 = 0
    while r0 < tokens {
        let n = min(6, tokens - r0)
        let p0 = probs + r0 &* tokens, p1 = probs + (r0 + min(1, n - 1)) &* tokens, p2 = probs + (r0 + min(2, n - 1)) &* tokens
        let p3 = probs + (r0 + min(3, n - 1)) &* tokens, p4 = probs + (r0 + min(4, n - 1)) &* tokens
        let p5 = probs + (r0 + min(5, n - 1)) &* tokens
        var c0 = 0
        while c0 < hd {
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>()
            var a3 = SIMD16<Float>(), a4 = SIMD16<Float>(), a5 = SIMD16<Float>()
            var vj = v + c0
            for j in 0..<tokens {
                let v16 = vj.load16(0)
                a0.addProduct(SIMD16(repeating: p0[j]), v16)
                a1.addProduct(SIMD16(repeating: p1[j]), v16)
                a2.addProduct(SIMD16(repeating: p2[j]), v16)
                a3.addProduct(SIMD16(repeating: p3[j]), v16)
                a4.addProduct(SIMD16(repeating: p4[j]), v16)
                a5.addProduct(SIMD16(repeating: p5[j]), v16)
                vj += ldv
            }
            let dst = out + r0 * ldo + c0
            dst.store16(a0, 0)
            if n > 1 { (dst + ldo).store16(a1, 0) }
            if n > 2 { (dst + 2 * ldo).store16(a2, 0) }
            if n > 3 { (dst + 3 * ldo).store16(a3, 0) }
            if n > 4 { (dst + 4 * ldo).store16(a4, 0) }
            if n > 5 { (dst + 5 * ldo).store16(a5, 0) }
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
