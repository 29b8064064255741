import TFCore
import TFKernels

/// Where a forward pass keeps its values, laid out once in one slab. For inference every
/// block reads and writes the same few buffers (the residual stream is updated in place);
/// with `keepActivations` each block owns the activations its backward pass needs.
public final class ForwardBuffers {
    /// The buffers of one transformer block. `input`, `middle` (after attention) and `output`
    /// are the residual stream; `mean*`/`rstd*` are kept only for training.
    public struct Block {
        public let input, norm1, qkv, attention, middle, norm2, hidden, output: UnsafeMutablePointer<Float>
        public let mean1, rstd1, mean2, rstd2: UnsafeMutablePointer<Float>?
        let probs: UnsafeMutablePointer<Float>
        let probsPerTask: Bool
        let probsSize: Int

        /// Softmax probabilities of attention task (image·heads + head): kept per task for
        /// training, per worker scratch for inference.
        public func probabilities(task: Int, worker: Int) -> UnsafeMutablePointer<Float> {
            probs + (probsPerTask ? task : worker) * probsSize
        }
    }

    public let blocks: [Block]
    public let cols, branch, norm, se1, se2, patchWeight, patchStd, gated: UnsafeMutablePointer<Float>
    public let f0, f1, f2, f3, bn1Mean, bn1Rstd, bn3Mean, bn3Rstd: UnsafeMutablePointer<Float>
    public let meanFinal, rstdFinal: UnsafeMutablePointer<Float>?
    /// Per-worker scratch of the attention kernel (`attentionScratchCount` floats each).
    public let attentionScratch: UnsafeMutablePointer<Float>
    public let attentionScratchCount: Int
    /// Training layout: every block keeps its activations.
    public let keepsActivations: Bool
    private let slab: FloatSlab

    public var bytes: Int { slab.count * 4 }

    init(config c: ViTConfig, batch: Int, workers: Int, keepActivations keep: Bool) throws {
        let t = c.numPatches, d = c.embedDim
        let rows = try checkedProduct([batch, t], what: "workspace")
        let rowsD = try checkedProduct([rows, d], what: "workspace")
        let rowsHidden = try checkedProduct([rows, c.mlpHiddenDim], what: "workspace")
        let probsCount = try checkedProduct([keep ? batch * c.numHeads : workers, t, t], what: "workspace")
        var plan = SlabPlanner()
        var blockOffsets: [[Int]] = []
        let shared = keep ? nil : (x: plan.reserve(rowsD), h: plan.reserve(rowsD), qkv: plan.reserve(3 * rowsD),
                                   attn: plan.reserve(rowsD), hidden: plan.reserve(rowsHidden), probs: plan.reserve(probsCount))
        var previousOutput = keep ? plan.reserve(rowsD) : shared!.x
        for _ in 0..<c.depth {
            if let s = shared {
                blockOffsets.append([s.x, s.h, s.qkv, s.attn, s.x, s.h, s.hidden, s.x, s.probs])
            } else {
                let input = previousOutput
                let o = [input, plan.reserve(rowsD), plan.reserve(3 * rowsD), plan.reserve(rowsD), plan.reserve(rowsD),
                         plan.reserve(rowsD), plan.reserve(rowsHidden), plan.reserve(rowsD), plan.reserve(probsCount),
                         plan.reserve(rows), plan.reserve(rows), plan.reserve(rows), plan.reserve(rows)]
                previousOutput = o[7]
                blockOffsets.append(o)
            }
        }
        let cols = plan.reserve(try checkedProduct([rows, c.patchValues], what: "workspace"))
        let branch = shared?.h ?? plan.reserve(rowsD)
        let norm = shared?.h ?? plan.reserve(rowsD)
        let gated = shared?.attn ?? plan.reserve(rowsD)
        let small = [rows, rows, rows, rows, batch * d, batch * d, batch * c.embeddingSize, batch * c.embeddingSize,
                     d, d, c.embeddingSize, c.embeddingSize].map { plan.reserve($0) }
        let finalStats = keep ? [plan.reserve(rows), plan.reserve(rows)] : []
        attentionScratchCount = TFKernels.attentionScratchCount(tokens: t, headDim: c.headDim)
        let scratch = plan.reserve(try checkedProduct([workers, attentionScratchCount], what: "workspace"))
        slab = try FloatSlab(count: plan.total)
        let base = slab.base
        blocks = blockOffsets.map { o in
            Block(input: base + o[0], norm1: base + o[1], qkv: base + o[2], attention: base + o[3], middle: base + o[4],
                  norm2: base + o[5], hidden: base + o[6], output: base + o[7],
                  mean1: keep ? base + o[9] : nil, rstd1: keep ? base + o[10] : nil,
                  mean2: keep ? base + o[11] : nil, rstd2: keep ? base + o[12] : nil,
                  probs: base + o[8], probsPerTask: keep, probsSize: t * t)
        }
        (self.cols, self.branch, self.norm, self.gated) = (base + cols, base + branch, base + norm, base + gated)
        (se1, se2, patchWeight, patchStd) = (base + small[0], base + small[1], base + small[2], base + small[3])
        (f0, f1, f2, f3) = (base + small[4], base + small[5], base + small[6], base + small[7])
        (bn1Mean, bn1Rstd, bn3Mean, bn3Rstd) = (base + small[8], base + small[9], base + small[10], base + small[11])
        keepsActivations = keep
        attentionScratch = base + scratch
        meanFinal = keep ? base + finalStats[0] : nil
        rstdFinal = keep ? base + finalStats[1] : nil
    }
}
