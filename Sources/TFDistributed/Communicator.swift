#if canImport(Glibc)
import Glibc
#endif
import TFCore

/// The collectives distributed training needs, over the ranks of one job. Every rank must make
/// the same calls in the same order with the same counts (MPI's rule). Buffers are reduced in
/// place. Errors are thrown (`TransFaceError`), never trapped.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws
    func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws
    func allreduceMax(_ values: UnsafeMutableBufferPointer<Float>) throws
    func allreduceMax(_ values: UnsafeMutableBufferPointer<Double>) throws
    func allreduceMin(_ values: UnsafeMutableBufferPointer<Double>) throws
    /// Every rank's `send` (same count everywhere) into `receive` (size × count, rank order).
    func allgather(_ send: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>) throws
    func allgather(_ send: UnsafeBufferPointer<Int32>, into receive: UnsafeMutableBufferPointer<Int32>) throws
    /// Rank r's `send` (counts[r] values) into `receive` at the sum of the earlier counts.
    func allgatherv(_ send: UnsafeBufferPointer<Float>, counts: [Int], into receive: UnsafeMutableBufferPointer<Float>) throws
    /// Root's bytes to every rank (the count must agree).
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    func barrier() throws
    /// Ends the whole job (every rank) with `code`; does not return.
    func abort(code: Int32) -> Never
}

extension Communicator {
    /// `allreduceSum` in buckets of at most `bucket` values (one MPI call each, so that no call
    /// exceeds MPI's int count and large gradients travel in pieces).
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>, bucket: Int) throws {
        let step = max(bucket, 1)
        var lo = 0
        while lo < values.count {
            let hi = min(lo + step, values.count)
            try allreduceSum(UnsafeMutableBufferPointer(rebasing: values[lo..<hi]))
            lo = hi
        }
    }
}

/// One process, no MPI: every collective of a world of size 1 (reductions leave the values as
/// they are, gathers copy). The distributed code paths run unchanged over it.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Float>) throws {}
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func allreduceMin(_ values: UnsafeMutableBufferPointer<Double>) throws {}
    public func allgather(_ send: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>) throws {
        try copy(send, receive)
    }
    public func allgather(_ send: UnsafeBufferPointer<Int32>, into receive: UnsafeMutableBufferPointer<Int32>) throws {
        try copy(send, receive)
    }
    public func allgatherv(_ send: UnsafeBufferPointer<Float>, counts: [Int], into receive: UnsafeMutableBufferPointer<Float>) throws {
        try require(counts == [send.count], "allgatherv: counts \(counts) do not match a world of one sending \(send.count)")
        try copy(send, receive)
    }
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        try require(root == 0, "broadcast: root \(root) is outside a world of one")
    }
    public func barrier() throws {}
    public func abort(code: Int32) -> Never { exit(code) }

    private func copy<T>(_ send: UnsafeBufferPointer<T>, _ receive: UnsafeMutableBufferPointer<T>) throws {
        try require(receive.count >= send.count, "gather: receive buffer holds \(receive.count), needs \(send.count)")
        guard let s = send.baseAddress, let r = receive.baseAddress else { return }
        r.update(from: s, count: send.count)
    }
}
