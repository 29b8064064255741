import TFCore

/// Multi-head self-attention of one image and one head, from the packed qkv projection.
/// `qkv` is [tokens × 3·dim] laid out (q|k|v, head, headDim) as PyTorch's reshape(B, N, 3, H, hd);
/// writes the head's output columns of `out` [tokens × dim] and its probabilities to
/// `probs` [tokens × tokens] (kept for the backward pass, or scratch).
public func attentionHeadForward(
    out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
    qkv: UnsafePointer<Float>, tokens: Int, dim: Int, heads: Int, head: Int
) {
    let hd = dim / heads
    let q = qkv + head * hd, k = qkv + dim + head * hd, v = qkv + 2 * dim + head * hd
    let scale = 1 / Float(hd).squareRoot()
    BLAS.gemm(m: tokens, n: tokens, k: hd, a: q, lda: 3 * dim, b: k, ldb: 3 * dim, transposeB: true,
              c: probs, ldc: tokens, alpha: scale)
    softmaxRowsForward(probs, rows: tokens, cols: tokens)
    BLAS.gemm(m: tokens, n: hd, k: tokens, a: UnsafePointer(probs), lda: tokens, b: v, ldb: 3 * dim, transposeB: false,
              c: out + head * hd, ldc: dim)
}
