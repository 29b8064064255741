import TFCore
import TFKernels
import TFKernelsAVX512

/// The vector width our own kernels run at, chosen once per forward pass: AVX-512 where the CPU
/// has it (x86-64-v4) and the instruction-set ceiling (`TRANSFACE_ISA`, shared with the matmul
/// backend) allows it, AVX2 + FMA otherwise. Both sets come from the same source files.
struct KernelDispatch {
    typealias Attention = (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Int, Int, Int,
                           UnsafeMutablePointer<Float>) -> Void

    /// `attentionHeadForward(out:probs:qkv:tokens:dim:heads:head:scratch:)` of the chosen set.
    let attentionHead: Attention

    init() throws {
        let ceiling = try MatmulBackend.configure()
        if BLAS.cpuSupportsAVX512Kernels && ceiling != .avx2 {
            attentionHead = { TFKernelsAVX512.attentionHeadForward(out: $0, probs: $1, qkv: $2, tokens: $3, dim: $4, heads: $5, head: $6, scratch: $7) }
        } else {
            attentionHead = { TFKernels.attentionHeadForward(out: $0, probs: $1, qkv: $2, tokens: $3, dim: $4, heads: $5, head: $6, scratch: $7) }
        }
    }
}
