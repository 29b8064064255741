#if canImport(Glibc)
import Glibc
#endif
import CMPIShim
import TFCore

/// `MPI_COMM_WORLD` of Open MPI, loaded at run time (`dlopen` of libmpi.so.40, or the path in
/// `TRANSFACE_MPI_LIBRARY`): libtransface needs no MPI to load, only to train distributed.
/// `MPI_ERRORS_RETURN` is set, so a failed collective throws the MPI error string. MPI is
/// initialised once per process (the first `init`), and later instances share it.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    /// Loads and initialises MPI; `library` overrides the path (nil: environment, then libmpi.so.40).
    public init(library: String? = nil) throws {
        try Self.initialiseOnce(library)
        var r: Int32 = 0, s: Int32 = 0
        try Self.call { tf_mpi_rank_size(&r, &s, $0, $1) }
        rank = Int(r)
        size = Int(s)
    }

    private static var initialised = false
    private static func initialiseOnce(_ library: String?) throws {
        guard !initialised else { return }
        if let library {
            try library.withCString { p in try call { tf_mpi_init(p, $0, $1) } }
        } else {
            try call { tf_mpi_init(nil, $0, $1) }
        }
        initialised = true
    }

    /// Runs a shim call with an error buffer; throws its message.
    static func call(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var buffer = [CChar](repeating: 0, count: 512)
        let rc = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard rc != 0 else { return }
        let message = String(cString: buffer)
        throw TransFaceError(rc == TF_MPI_E_LOAD ? .notFound : .io, "mpi: \(message)")
    }

    private func reduce(_ p: UnsafeMutableRawPointer?, _ count: Int, _ type: tf_mpi_type, _ op: tf_mpi_op) throws {
        guard count > 0, let p else { return }
        try Self.call { tf_mpi_allreduce(p, count, Int32(type.rawValue), Int32(op.rawValue), $0, $1) }
    }

    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Float>) throws { try reduce(values.baseAddress, values.count, TF_MPI_FLOAT, TF_MPI_SUM) }
    public func allreduceSum(_ values: UnsafeMutableBufferPointer<Double>) throws { try reduce(values.baseAddress, values.count, TF_MPI_DOUBLE, TF_MPI_SUM) }
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Float>) throws { try reduce(values.baseAddress, values.count, TF_MPI_FLOAT, TF_MPI_MAX) }
    public func allreduceMax(_ values: UnsafeMutableBufferPointer<Double>) throws { try reduce(values.baseAddress, values.count, TF_MPI_DOUBLE, TF_MPI_MAX) }
    public func allreduceMin(_ values: UnsafeMutableBufferPointer<Double>) throws { try reduce(values.baseAddress, values.count, TF_MPI_DOUBLE, TF_MPI_MIN) }

    private func gather(_ send: UnsafeRawPointer?, _ count: Int, _ receive: UnsafeMutableRawPointer?, _ receiveCount: Int,
                        _ type: tf_mpi_type) throws {
        try require(receiveCount >= count * size, "allgather: receive buffer holds \(receiveCount), needs \(size)×\(count)")
        guard count > 0, let send, let receive else { return }
        try Self.call { tf_mpi_allgather(send, receive, count, Int32(type.rawValue), $0, $1) }
    }

    public func allgather(_ send: UnsafeBufferPointer<Float>, into receive: UnsafeMutableBufferPointer<Float>) throws {
        try gather(send.baseAddress, send.count, receive.baseAddress, receive.count, TF_MPI_FLOAT)
    }
    public func allgather(_ send: UnsafeBufferPointer<Int32>, into receive: UnsafeMutableBufferPointer<Int32>) throws {
        try gather(send.baseAddress, send.count, receive.baseAddress, receive.count, TF_MPI_INT)
    }

    public func allgatherv(_ send: UnsafeBufferPointer<Float>, counts: [Int], into receive: UnsafeMutableBufferPointer<Float>) throws {
        try require(counts.count == size && counts[rank] == send.count, "allgatherv: counts \(counts) do not match rank \(rank) sending \(send.count)")
        try require(counts.allSatisfy { $0 >= 0 && $0 <= Int(Int32.max) }, "allgatherv: counts outside MPI's int range")
        let total = counts.reduce(0, +)
        try require(total <= Int(Int32.max) && receive.count >= total, "allgatherv: receive buffer holds \(receive.count), needs \(total)")
        var displacements = [Int32](), at = 0
        for c in counts { displacements.append(Int32(at)); at += c }
        let c32 = counts.map(Int32.init)
        var dummy: Float = 0
        try withUnsafeMutablePointer(to: &dummy) { d in
            let s = UnsafeRawPointer(send.baseAddress ?? UnsafePointer(d)), r = UnsafeMutableRawPointer(receive.baseAddress ?? d)
            try Self.call { tf_mpi_allgatherv(s, send.count, r, c32, displacements, Int32(TF_MPI_FLOAT.rawValue), $0, $1) }
        }
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        try require(root >= 0 && root < size, "broadcast: root \(root) is outside 0..<\(size)")
        guard let p = bytes.baseAddress, bytes.count > 0 else { return }
        try Self.call { tf_mpi_broadcast(p, bytes.count, Int32(TF_MPI_BYTE.rawValue), Int32(root), $0, $1) }
    }

    public func barrier() throws { try Self.call { tf_mpi_barrier($0, $1) } }

    public func abort(code: Int32) -> Never {
        tf_mpi_abort(code)
        fatalError("MPI_Abort returned")  // tf_mpi_abort _Exits; never reached
    }

    /// MPI_Finalize (once per process; collectives afterwards throw).
    public static func finalize() throws {
        guard initialised else { return }
        try call { tf_mpi_finalize($0, $1) }
    }
}
