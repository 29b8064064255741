// Communication of distributed training, measured (not a test): under `mpirun -np N`, trains
// `arch` for a few steps on random images and reports per step the seconds and bytes of every
// collective (the backbone's gradient allreduce, the head's gathers and softmax reductions),
// the step time and the throughput; before each collective a barrier is timed apart (the wait
// for the slowest rank), so the collective's own time is its transfer. Tests/MPI/bench.sh runs it.
//
//   TFMPIBench ARCH BATCH_PER_RANK CLASSES STEPS
#if canImport(Glibc)
import Glibc
#endif
import TFCore
import TFDistributed
import TFTrain

/// Forwards to MPI, timing each call and counting the bytes this rank contributes.
final class CountingCommunicator: Communicator {
    let inner: MPICommunicator
    var seconds: [String: Double] = [:], bytes: [String: Int] = [:]
    init(_ inner: MPICommunicator) { self.inner = inner }
    var rank: Int { inner.rank }
    var size: Int { inner.size }
    /// Times a barrier first (waiting for the slowest rank, booked apart) so that each
    /// collective's time is its own transfer and reduction.
    private func count<T>(_ what: String, _ n: Int, _ body: () throws -> T) throws -> T {
        let w = monotonicSeconds()
        if size > 1 { try inner.barrier() }
        let t = monotonicSeconds()
        seconds["(waiting for the slowest rank)", default: 0] += t - w
        bytes["(waiting for the slowest rank)", default: 0] += 0
        defer { seconds[what, default: 0] += monotonicSeconds() - t; bytes[what, default: 0] += n }
        return try body()
    }
    func allreduceSum(_ v: UnsafeMutableBufferPointer<Float>) throws {
        try count(v.count > 1 << 16 ? "allreduce (backbone gradient)" : "allreduce (head: nll, dx)", 4 * v.count) { try inner.allreduceSum(v) }
    }
    func allreduceSum(_ v: UnsafeMutableBufferPointer<Double>) throws { try count("allreduce (head: softmax sums)", 8 * v.count) { try inner.allreduceSum(v) } }
    func allreduceMax(_ v: UnsafeMutableBufferPointer<Float>) throws { try count("allreduce (head: softmax max)", 4 * v.count) { try inner.allreduceMax(v) } }
    func allreduceMax(_ v: UnsafeMutableBufferPointer<Double>) throws { try count("allreduce (checksum)", 8 * v.count) { try inner.allreduceMax(v) } }
    func allreduceMin(_ v: UnsafeMutableBufferPointer<Double>) throws { try count("allreduce (checksum)", 8 * v.count) { try inner.allreduceMin(v) } }
    func allgather(_ s: UnsafeBufferPointer<Float>, into r: UnsafeMutableBufferPointer<Float>) throws {
        try count("allgather (head: embeddings, weights)", 4 * s.count) { try inner.allgather(s, into: r) }
    }
    func allgather(_ s: UnsafeBufferPointer<Int32>, into r: UnsafeMutableBufferPointer<Int32>) throws {
        try count("allgather (head: labels)", 4 * s.count) { try inner.allgather(s, into: r) }
    }
    func allgatherv(_ s: UnsafeBufferPointer<Float>, counts: [Int], into r: UnsafeMutableBufferPointer<Float>) throws {
        try count("allgatherv", 4 * s.count) { try inner.allgatherv(s, counts: counts, into: r) }
    }
    func broadcast(_ b: UnsafeMutableRawBufferPointer, root: Int) throws { try count("broadcast", b.count) { try inner.broadcast(b, root: root) } }
    func barrier() throws { try inner.barrier() }
    func abort(code: Int32) -> Never { inner.abort(code: code) }
}

/// `x` rounded to `digits` decimals.
func fixed(_ x: Double, _ digits: Int) -> String {
    let scale = Double([1, 10, 100, 1000][min(digits, 3)])
    return "\((x * scale).rounded() / scale)"
}

let a = CommandLine.arguments
guard a.count == 5, let batch = Int(a[2]), let classes = Int(a[3]), let steps = Int(a[4]), steps >= 3 else {
    fputs("usage: TFMPIBench ARCH BATCH_PER_RANK CLASSES STEPS(>=3)\n", stderr); exit(2)
}
do {
    let comm = CountingCommunicator(try MPICommunicator())
    let config = try TrainerConfig.parse("""
        {"arch": "\(a[1])", "num_classes": \(classes), "batch_size": \(batch), "threads": 1, "seed": 1,
         "schedule": {"max_steps": 1000}, "distributed": {"checksum_every": 0}}
        """)
    let trainer = try Trainer(config: config, communicator: comm)
    let size = config.model.imgSize
    var rng = SeededRNG(seed: 5, stream: UInt64(comm.rank))
    var images = [UInt8](repeating: 0, count: batch * size * size * 3)
    let warm = 2
    var start = 0.0
    for step in 0..<steps {
        if step == warm { comm.seconds = [:]; comm.bytes = [:]; start = monotonicSeconds() }
        for i in images.indices { images[i] = UInt8(truncatingIfNeeded: rng.next()) }
        let labels = (0..<batch).map { _ in Int32(rng.next() % UInt64(classes)) }
        _ = try trainer.step(images: images, labels: labels)
    }
    let timed = Double(steps - warm), elapsed = monotonicSeconds() - start
    if comm.rank == 0 {
        print("\(a[1]), \(comm.size) rank(s) × batch \(batch), \(classes) classes, \(trainer.layout.totalCount) parameters; per step over \(steps - warm) steps:")
        for key in comm.seconds.keys.sorted() {
            print("  \(key): \(fixed(Double(comm.bytes[key]!) / timed / 1e6, 3)) MB sent per rank, \(fixed(1e3 * comm.seconds[key]! / timed, 2)) ms")
        }
        let total = comm.seconds.filter { !$0.key.hasPrefix("(") }.values.reduce(0, +) / timed
        print("  step \(fixed(1e3 * elapsed / timed, 1)) ms, of which collectives \(fixed(1e3 * total, 1)) ms (waits apart); \(fixed(Double(comm.size * batch) * timed / elapsed, 2)) images/s")
    }
    try MPICommunicator.finalize()
} catch {
    fputs("TFMPIBench: \(error)\n", stderr)
    exit(1)
}
