import TFCore
import TFKernelsAVX512
import XCTest

/// The AVX-512 build of the kernels (TFKernelsAVX512, the same sources compiled for x86-64-v4)
/// against the same float64 oracles as the AVX2 build; skipped on CPUs without AVX-512.
extension KernelOracleTests {
    func testAttentionHeadAVX512() throws {
        guard BLAS.cpuSupportsAVX512Kernels else { throw XCTSkip("this CPU has no AVX-512 (x86-64-v4)") }
        checkAttentionHead {
            TFKernelsAVX512.attentionHeadForward(out: $0, probs: $1, qkv: $2, tokens: $3, dim: $4, heads: $5, head: $6, scratch: $7)
        }
    }

    func testSoftmaxMatchesExactExpAVX512() throws {
        guard BLAS.cpuSupportsAVX512Kernels else { throw XCTSkip("this CPU has no AVX-512 (x86-64-v4)") }
        checkSoftmax { TFKernelsAVX512.softmaxRowsForward($0, rows: $1, cols: $2) }
    }
}
