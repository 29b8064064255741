import TFCore

/// Floats of per-worker scratch `attentionHeadForward` needs: the head's keys transposed.
public func attentionScratchCount(tokens: Int, headDim: Int) -> Int { headDim * keyStride(tokens) }

/// Row length of the transposed keys: tokens rounded up to 32 (the widest tile's reach), zero-padded.
func keyStride(_ tokens: Int) -> Int { (tokens + 31) / 32 * 32 }

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
    let stride = keyStride(tokens)
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
/// six rows per register tile, fused multiply-adds in t order. Tiles are 16 columns wide; the
/// AVX-512 build (TF_AVX512) takes 32 while more than 16 columns remain (twelve accumulators fill
/// its FMA pipes), reading b up to the next multiple of 32 columns. Each output's arithmetic is
/// the same in both widths.
private func tiledProduct(out: UnsafeMutablePointer<Float>, ldo: Int, a: UnsafePointer<Float>, lda: Int,
                          b: UnsafePointer<Float>, ldb: Int, rows: Int, cols: Int, depth: Int, scale: Float) {
    var r0 = 0
    while r0 < rows {
        let n = min(6, rows - r0)
        // Missing rows of the last group repeat a real row; their results are not stored.
        let tile = (a + r0 &* lda, a + (r0 + min(1, n - 1)) &* lda, a + (r0 + min(2, n - 1)) &* lda,
                    a + (r0 + min(3, n - 1)) &* lda, a + (r0 + min(4, n - 1)) &* lda, a + (r0 + min(5, n - 1)) &* lda)
        var c0 = 0
        while c0 < cols {
            #if TF_AVX512
            if cols - c0 > 16 {
                tile32(out: out + r0 * ldo + c0, ldo: ldo, a: tile, b: b + c0, ldb: ldb, rows: n, width: min(32, cols - c0),
                       depth: depth, scale: scale)
                c0 += 32
                continue
            }
            #endif
            tile16(out: out + r0 * ldo + c0, ldo: ldo, a: tile, b: b + c0, ldb: ldb, rows: n, width: min(16, cols - c0),
                   depth: depth, scale: scale)
            c0 += 16
        }
        r0 += 6
    }
}

typealias SixRows = (UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                     UnsafePointer<Float>, UnsafePointer<Float>)

/// One 6 × 16 tile; stores `rows` rows of `width` columns.
@inline(__always)
private func tile16(out: UnsafeMutablePointer<Float>, ldo: Int, a: SixRows, b: UnsafePointer<Float>, ldb: Int,
                    rows n: Int, width: Int, depth: Int, scale: Float) {
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>()
    var s3 = SIMD16<Float>(), s4 = SIMD16<Float>(), s5 = SIMD16<Float>()
    var bt = b
    for t in 0..<depth {
        let b16 = bt.load16(0)
        s0.addProduct(SIMD16(repeating: a.0[t]), b16)
        s1.addProduct(SIMD16(repeating: a.1[t]), b16)
        s2.addProduct(SIMD16(repeating: a.2[t]), b16)
        s3.addProduct(SIMD16(repeating: a.3[t]), b16)
        s4.addProduct(SIMD16(repeating: a.4[t]), b16)
        s5.addProduct(SIMD16(repeating: a.5[t]), b16)
        bt += ldb
    }
    let sv = SIMD16<Float>(repeating: scale)
    storePrefix(s0 * sv, width, out)
    if n > 1 { storePrefix(s1 * sv, width, out + ldo) }
    if n > 2 { storePrefix(s2 * sv, width, out + 2 * ldo) }
    if n > 3 { storePrefix(s3 * sv, width, out + 3 * ldo) }
    if n > 4 { storePrefix(s4 * sv, width, out + 4 * ldo) }
    if n > 5 { storePrefix(s5 * sv, width, out + 5 * ldo) }
}

#if TF_AVX512
/// One 6 × 32 tile; stores `rows` rows of `width` (17...32) columns.
@inline(__always)
private func tile32(out: UnsafeMutablePointer<Float>, ldo: Int, a: SixRows, b: UnsafePointer<Float>, ldb: Int,
                    rows n: Int, width: Int, depth: Int, scale: Float) {
    var s0 = SIMD16<Float>(), s1 = SIMD16<Float>(), s2 = SIMD16<Float>(), s3 = SIMD16<Float>()
    var s4 = SIMD16<Float>(), s5 = SIMD16<Float>(), u0 = SIMD16<Float>(), u1 = SIMD16<Float>()
    var u2 = SIMD16<Float>(), u3 = SIMD16<Float>(), u4 = SIMD16<Float>(), u5 = SIMD16<Float>()
    var bt = b
    for t in 0..<depth {
        let lo = bt.load16(0), hi = bt.load16(16)
        let x0 = SIMD16<Float>(repeating: a.0[t]), x1 = SIMD16<Float>(repeating: a.1[t]), x2 = SIMD16<Float>(repeating: a.2[t])
        s0.addProduct(x0, lo); u0.addProduct(x0, hi)
        s1.addProduct(x1, lo); u1.addProduct(x1, hi)
        s2.addProduct(x2, lo); u2.addProduct(x2, hi)
        let x3 = SIMD16<Float>(repeating: a.3[t]), x4 = SIMD16<Float>(repeating: a.4[t]), x5 = SIMD16<Float>(repeating: a.5[t])
        s3.addProduct(x3, lo); u3.addProduct(x3, hi)
        s4.addProduct(x4, lo); u4.addProduct(x4, hi)
        s5.addProduct(x5, lo); u5.addProduct(x5, hi)
        bt += ldb
    }
    let sv = SIMD16<Float>(repeating: scale)
    @inline(__always) func store(_ lo: SIMD16<Float>, _ hi: SIMD16<Float>, _ dst: UnsafeMutablePointer<Float>) {
        dst.store16(lo * sv, 0)
        storePrefix(hi * sv, width - 16, dst + 16)
    }
    store(s0, u0, out)
    if n > 1 { store(s1, u1, out + ldo) }
    if n > 2 { store(s2, u2, out + 2 * ldo) }
    if n > 3 { store(s3, u3, out + 3 * ldo) }
    if n > 4 { store(s4, u4, out + 4 * ldo) }
    if n > 5 { store(s5, u5, out + 5 * ldo) }
}
#endif

/// Stores the first `width` lanes of `v` at `dst`.
@inline(__always)
private func storePrefix(_ v: SIMD16<Float>, _ width: Int, _ dst: UnsafeMutablePointer<Float>) {
    if width == 16 { dst.store16(v, 0); return }
    for i in 0..<width { dst[i] = v[i] }
}
