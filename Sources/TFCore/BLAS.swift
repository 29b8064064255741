import CBLAS

/// Row-major single-precision GEMM helpers over raw pointers (cblas_sgemm underneath).
public enum BLAS {
    /// Makes OpenBLAS single-threaded; the library parallelises with its own workers.
    public static func useSingleThread() {
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    /// The OpenBLAS kernel family in use (e.g. "Haswell").
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// C[m×n] = alpha · A[m×k] · op(B) + beta · C, row-major, where op(B) is B[k×n] or,
    /// when `transposeB`, Bᵀ with B stored [n×k] (PyTorch's Linear weight layout).
    @inlinable
    public static func gemm(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float = 1, beta: Float = 0, transposeA: Bool = false
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `out[rows×outF] = x[rows×inF] · Wᵀ (+ beta·out)` with W stored [outF×inF], split across the
    /// pool: by rows when there are many, otherwise by output features. Each output element is
    /// computed by the same call sequence whatever the split, so results do not depend on it.
    public static func linear(
        pool: WorkerPool, rows: Int, inFeatures: Int, outFeatures: Int,
        x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
        out: UnsafeMutablePointer<Float>, beta: Float = 0
    ) {
        let workers = pool.threadCount
        if workers == 1 || rows * outFeatures < 4096 {
            gemm(m: rows, n: outFeatures, k: inFeatures, a: x, lda: inFeatures, b: weight, ldb: inFeatures,
                 transposeB: true, c: out, ldc: outFeatures, beta: beta)
            return
        }
        if rows >= 16 * workers {
            pool.parallelFor(rows) { r in
                gemm(m: r.count, n: outFeatures, k: inFeatures, a: x + r.lowerBound * inFeatures, lda: inFeatures,
                     b: weight, ldb: inFeatures, transposeB: true, c: out + r.lowerBound * outFeatures,
                     ldc: outFeatures, beta: beta)
            }
        } else {
            // Split output features in multiples of 16 so kernels see aligned column blocks.
            let blocks = (outFeatures + 15) / 16
            pool.parallelFor(blocks) { br in
                let lo = br.lowerBound * 16, hi = min(br.upperBound * 16, outFeatures)
                gemm(m: rows, n: hi - lo, k: inFeatures, a: x, lda: inFeatures, b: weight + lo * inFeatures,
                     ldb: inFeatures, transposeB: true, c: out + lo, ldc: outFeatures, beta: beta)
            }
        }
    }
}
