import CBLAS

/// Row-major single-precision GEMM helpers over raw pointers (cblas_sgemm underneath).
public enum BLAS {
    /// Makes OpenBLAS single-threaded; the library parallelises with its own workers.
    public static func useSingleThread() {
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    /// Whether this CPU has the instructions the kernels are compiled for (x86-64: AVX2 + FMA).
    public static var cpuSupportsKernels: Bool { transface_cpu_supports_kernels() != 0 }

    /// Whether this CPU has what the AVX-512 twins of the kernels are compiled for (x86-64-v4).
    public static var cpuSupportsAVX512Kernels: Bool { transface_cpu_supports_avx512() != 0 }

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
}

extension BLAS {
    /// Linear backward, weight part: `dW[out×in] += dYᵀ · X` over `rows` rows, output features
    /// split across workers (each worker owns whole rows of dW).
    public static func linearBackwardWeights(
        pool: WorkerPool, rows: Int, inFeatures: Int, outFeatures: Int,
        dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dweight: UnsafeMutablePointer<Float>
    ) {
        pool.parallelFor(outFeatures) { r in
            gemm(m: r.count, n: inFeatures, k: rows, a: dy + r.lowerBound, lda: outFeatures, b: x, ldb: inFeatures,
                 transposeB: false, c: dweight + r.lowerBound * inFeatures, ldc: inFeatures, beta: 1, transposeA: true)
        }
    }

    /// Linear backward, input part: `dX[rows×in] = dY · W (+ beta·dX)`, rows split across workers.
    public static func linearBackwardInput(
        pool: WorkerPool, rows: Int, inFeatures: Int, outFeatures: Int,
        dy: UnsafePointer<Float>, weight: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, beta: Float = 0
    ) {
        pool.parallelFor(rows) { r in
            gemm(m: r.count, n: inFeatures, k: outFeatures, a: dy + r.lowerBound * outFeatures, lda: outFeatures,
                 b: weight, ldb: inFeatures, transposeB: false, c: dx + r.lowerBound * inFeatures, ldc: inFeatures, beta: beta)
        }
    }
}
