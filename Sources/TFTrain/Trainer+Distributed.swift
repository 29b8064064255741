import TFCore
import TFDistributed

/// Data-parallel training over the ranks of `communicator` (the official TransFace/arcface_torch
/// scheme on CPUs): every rank runs the step on its own `batchSize` images; the head gathers
/// every rank's embeddings, labels and EHSM weights and is sharded by class (`PartialFC`); the
/// embedding gradient comes back summed over the shards; the backbone gradients are summed
/// over the ranks (bucketed allreduce), so every rank clips by the same global norm and takes
/// the same optimizer step.
///
/// Scale: the loss is the mean over the whole gathered batch, so the summed gradient is the
/// gradient one process with batch W·B computes. (arcface_torch's DDP averages instead, which
/// gives 1/W of it; with AdamW that only moves `eps` and the clipping threshold.) BatchNorm
/// statistics, token masking, drop path and DPAP partners are per rank, as in the official code.
extension Trainer {
    /// Floats per allreduce call of the backbone gradient (16 MiB, arcface_torch's bucket_cap_mb).
    public static let gradientBucket = 1 << 22

    /// This rank, and the number of ranks (0 and 1 in one process).
    public var rank: Int { communicator?.rank ?? 0 }
    public var worldSize: Int { communicator?.size ?? 1 }

    /// The head's forward on this step: the local batch in one process; over ranks, the
    /// all-gathered batch (embeddings, labels, EHSM weights, in rank order).
    func headForward(labels: UnsafeBufferPointer<Int32>) throws -> Double {
        let b = config.batchSize, e = config.model.embeddingSize
        let weights = ehsm == nil ? nil : UnsafeBufferPointer(sampleWeights)
        guard let comm = communicator else {
            return try partialFC.forward(embeddings: forward.embeddings, labels: labels, batch: b, sampleWeights: weights, pool: pool)
        }
        try comm.allgather(UnsafeBufferPointer(rebasing: forward.embeddings[0..<(b * e)]), into: globalEmbeddings)
        try globalLabels.withUnsafeMutableBufferPointer { try comm.allgather(labels, into: $0) }
        if let weights { try comm.allgather(weights, into: globalSampleWeights) }
        return try globalLabels.withUnsafeBufferPointer { l in
            try partialFC.forward(embeddings: UnsafeBufferPointer(globalEmbeddings), labels: l, batch: comm.size * b,
                                  sampleWeights: weights == nil ? nil : UnsafeBufferPointer(globalSampleWeights), pool: pool)
        }
    }

    /// New random streams for this rank, seeded by (seed, `step`, rank): a rank that the run
    /// being resumed did not have.
    func reseedStreams(mixing step: UInt64) {
        let seed = config.seed ^ (step &* 0x9E37_79B9_7F4A_7C15), r = UInt64(rank)
        noiseRNG = SeededRNG(seed: seed, stream: 0x4E4F_4953 &+ r << 48)
        partialFC.rng = SeededRNG(seed: seed, stream: 0x5046_4301 &+ r << 48)
        dpapRandom = SeededDPAPRandom(seed: seed, stream: r)
    }

    /// Sums the backbone gradients over the ranks, in buckets of `gradientBucket` floats.
    func allreduceGradients() throws {
        guard let comm = communicator, comm.size > 1 else { return }
        try comm.allreduceSum(gradients.all, bucket: Self.gradientBucket)
    }

    /// Every `checksum_every` steps: the ranks' weights must be identical (trainable backbone
    /// tensors; BatchNorm running statistics are per rank). Throws naming the step otherwise.
    func verifyReplicasIfDue() throws {
        guard let comm = communicator, comm.size > 1, let every = config.distributed?.checksumEvery, every > 0,
              step % every == 0 else { return }
        try verifyReplicas()
    }

    /// Compares a checksum of the trainable backbone weights across the ranks now.
    public func verifyReplicas() throws {
        guard let comm = communicator, comm.size > 1 else { return }
        let (sum, weighted) = weightChecksum()
        var range = [sum, weighted, -sum, -weighted]
        try range.withUnsafeMutableBufferPointer { try comm.allreduceMax($0) }
        guard range[0] == -range[2] && range[1] == -range[3] else {
            throw TransFaceError(.numeric, "step \(step): the ranks' weights diverged (checksum \(sum) on rank \(comm.rank), "
                                 + "from \(-range[2]) to \(range[0]) over \(comm.size) ranks)")
        }
    }

    /// Σ w and Σ (i mod 251 + 1)·w over the trainable tensors, in Double.
    func weightChecksum() -> (Double, Double) {
        var sum = 0.0, weighted = 0.0
        for t in group.tensors {
            let p = parameters.base + t.offset
            for i in 0..<t.count {
                let w = Double(p[i])
                sum += w
                weighted += Double(i % 251 + 1) * w
            }
        }
        return (sum, weighted)
    }
}
