import CDNNLMatmul
import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// What a Linear's product is followed by, fused into the backend's kernel.
public enum LinearEpilogue: Sendable {
    /// `y = x·Wᵀ`
    case plain
    /// `y = x·Wᵀ + b`
    case bias
    /// `y += x·Wᵀ + b` (a residual branch added to the stream in place)
    case biasAccumulate

    var code: tf_matmul_epilogue {
        switch self {
        case .plain: return TF_MATMUL_PLAIN
        case .bias: return TF_MATMUL_BIAS
        case .biasAccumulate: return TF_MATMUL_BIAS_ACCUMULATE
        }
    }
}

/// A token-wise Linear (PyTorch `nn.Linear`, W stored [out × in]) over the images of a batch,
/// on the matmul backend with W packed once into its blocked layout (`pack`).
///
/// Every image's `tokens` rows are cut into `tilesPerImage` fixed row tiles and each tile is one
/// product of a fixed shape, so a row's result never depends on the batch it arrives in; the
/// workers of the pool take contiguous runs of tiles. Primitives for a tile shape and epilogue are
/// made on first use (then reused: nothing is allocated per call once a shape has been seen).
public final class TokenLinear {
    public let inFeatures: Int
    public let outFeatures: Int
    public let precision: Precision
    private let workers: Int
    private var packed: UnsafeMutableRawPointer?
    private var packedBytes = 0
    private var kernels: [Key: Kernel] = [:]
    private let messages: UnsafeMutablePointer<CChar>
    private static let messageSize = 256

    private struct Key: Hashable { let rows: Int; let epilogue: LinearEpilogue }

    /// One primitive and an execution state per worker.
    private final class Kernel {
        let matmul: OpaquePointer
        let rows: Int
        var execs: [OpaquePointer] = []
        init(_ matmul: OpaquePointer, rows: Int) { self.matmul = matmul; self.rows = rows }
        deinit {
            for e in execs { tf_matmul_exec_free(e) }
            tf_matmul_free(matmul)
        }
    }

    public init(inFeatures: Int, outFeatures: Int, precision: Precision, workers: Int) throws {
        try require(inFeatures >= 1 && outFeatures >= 1, "Linear \(inFeatures) → \(outFeatures) is empty")
        try MatmulBackend.check(precision)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.precision = precision
        self.workers = workers
        messages = .allocate(capacity: workers * TokenLinear.messageSize)
        messages.initialize(repeating: 0, count: workers * TokenLinear.messageSize)
    }

    deinit {
        kernels.removeAll()
        free(packed)
        messages.deallocate()
    }

    /// Bytes of the packed weight.
    public var weightBytes: Int { packedBytes }

    /// The backend's implementation name for the first kernel made (e.g. "brg:avx512_core").
    public var implementation: String? {
        kernels.values.first.map { String(cString: tf_matmul_implementation($0.matmul)) }
    }

    /// Packs `weight` [outFeatures × inFeatures] (row-major) for the products that follow.
    public func pack(_ weight: UnsafePointer<Float>) throws {
        let kernel = try self.kernel(rows: 1, epilogue: .plain)
        let bytes = tf_matmul_packed_weight_bytes(kernel.matmul)
        if packed == nil || bytes != packedBytes {
            free(packed)
            packed = nil
            guard let p = aligned_alloc(64, (bytes + 63) / 64 * 64) else {
                throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes of packed weights")
            }
            packed = p
            packedBytes = bytes
        }
        try call { tf_matmul_pack_weight(kernel.matmul, weight, Int64(inFeatures), packed, $0, $1) }
    }

    /// `out[r, :] = epilogue(x[r, :]·Wᵀ)` for the `images × tokens` rows of `x` [rows × in] into
    /// `out` [rows × out], each image cut into `tilesPerImage` row tiles spread over `pool`.
    public func forward(pool: WorkerPool, images: Int, tokens: Int, tilesPerImage: Int,
                        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                        bias: UnsafePointer<Float>? = nil, epilogue: LinearEpilogue = .plain) throws {
        guard let packed else { throw TransFaceError(.misuse, "TokenLinear used before its weight was packed") }
        try require(pool.threadCount <= workers, "pool of \(pool.threadCount) workers exceeds the Linear's \(workers)")
        try require(tilesPerImage >= 1 && tilesPerImage <= tokens, "\(tilesPerImage) tiles for \(tokens) tokens")
        if epilogue != .plain { try require(bias != nil, "Linear epilogue \(epilogue) needs a bias") }
        // Tile sizes differ by at most one row: at most two kernels.
        let large = try kernel(rows: WorkerPool.split(tokens, parts: tilesPerImage, index: 0).count, epilogue: epilogue)
        let small = try kernel(rows: WorkerPool.split(tokens, parts: tilesPerImage, index: tilesPerImage - 1).count,
                               epilogue: epilogue)
        let tasks = images * tilesPerImage
        let inF = inFeatures, outF = outFeatures, messages = self.messages, size = TokenLinear.messageSize
        withExtendedLifetime((large, small)) {
            pool.run { worker in
                let message = messages + worker * size
                message[0] = 0
                for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                    let tile = WorkerPool.split(tokens, parts: tilesPerImage, index: task % tilesPerImage)
                    let row = (task / tilesPerImage) * tokens + tile.lowerBound
                    let k = tile.count == large.rows ? large : small
                    if tf_matmul_run(k.execs[worker], x + row * inF, packed, bias, out + row * outF, message, size) != 0 {
                        return
                    }
                }
            }
        }
        for w in 0..<pool.threadCount where messages[w * size] != 0 {
            throw TransFaceError(.internal, String(cString: messages + w * size))
        }
    }

    private func kernel(rows: Int, epilogue: LinearEpilogue) throws -> Kernel {
        let key = Key(rows: rows, epilogue: epilogue)
        if let k = kernels[key] { return k }
        let k = try MatmulBackend.creating { () throws -> Kernel in
            var handle: OpaquePointer?
            try call {
                tf_matmul_create(&handle, Int64(rows), Int64(outFeatures), Int64(inFeatures), Int64(inFeatures),
                                 Int64(outFeatures), precision == .bf16 ? TF_MATMUL_BF16 : TF_MATMUL_F32, epilogue.code, $0, $1)
            }
            let kernel = Kernel(handle!, rows: rows)
            for _ in 0..<workers {
                var exec: OpaquePointer?
                try call { tf_matmul_exec_create(kernel.matmul, &exec, $0, $1) }
                kernel.execs.append(exec!)
            }
            return kernel
        }
        if let first = kernels.values.first, tf_matmul_same_weight_layout(first.matmul, k.matmul) == 0 {
            throw TransFaceError(.internal, "oneDNN chose another weight layout for \(rows)-row tiles of a \(inFeatures) → \(outFeatures) Linear")
        }
        kernels[key] = k
        return k
    }

    /// Calls a backend function that reports failure as non-zero plus a message.
    private func call(_ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws {
        var message = [CChar](repeating: 0, count: TokenLinear.messageSize)
        if body(&message, message.count) != 0 { throw TransFaceError(.internal, String(cString: message)) }
    }
}
