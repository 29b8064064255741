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
/// on the matmul backend: the forward product and, for training, both backward products.
/// The forward (and input-gradient) products read W packed once into the backend's blocked
/// layout (`pack`, `packForBackward`).
///
/// Every image's `tokens` rows are cut into `tilesPerImage` fixed row tiles and each tile is one
/// product of a fixed shape, so a row's result never depends on the batch it arrives in; the
/// workers of the pool take contiguous runs of tiles. Primitives for a shape are made on first
/// use, then reused: nothing is allocated per call once a shape has been seen.
public final class TokenLinear {
    public let inFeatures: Int
    public let outFeatures: Int
    public let precision: Precision
    private let workers: Int
    private var forwardWeight = PackedWeight(), inputGradientWeight = PackedWeight()
    private var kernels: [Key: Kernel] = [:]
    private let messages: UnsafeMutablePointer<CChar>
    private static let messageSize = 256

    /// Which of the three products, on how many rows (and, for the weight gradient, over how many).
    private enum Product: Hashable {
        case forward(LinearEpilogue), inputGradient, weightGradient(rows: Int)

        /// Whether two products read the same packed weight (all forward epilogues share one).
        func sharesPacking(with other: Self) -> Bool {
            switch (self, other) {
            case (.forward, .forward), (.inputGradient, .inputGradient): return true
            default: return false
            }
        }
    }
    private struct Key: Hashable { let product: Product; let m: Int }

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

    /// A weight in the backend's layout for one product.
    private struct PackedWeight {
        var data: UnsafeMutableRawPointer?
        var bytes = 0
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
        free(forwardWeight.data)
        free(inputGradientWeight.data)
        messages.deallocate()
    }

    /// Bytes of the packed weights.
    public var weightBytes: Int { forwardWeight.bytes + inputGradientWeight.bytes }

    /// Packs `weight` [outFeatures × inFeatures] (row-major) for the forward products that follow.
    public func pack(_ weight: UnsafePointer<Float>) throws {
        try pack(weight, into: &forwardWeight, using: try kernel(.forward(.plain), m: 1))
    }

    /// Packs `weight` for the input-gradient products that follow (float32 only).
    public func packForBackward(_ weight: UnsafePointer<Float>) throws {
        try pack(weight, into: &inputGradientWeight, using: try kernel(.inputGradient, m: 1))
    }

    /// `out[r, :] = epilogue(x[r, :]·Wᵀ)` for the `images × tokens` rows of `x` [rows × in] into
    /// `out` [rows × out], each image cut into `tilesPerImage` row tiles spread over `pool`.
    public func forward(pool: WorkerPool, images: Int, tokens: Int, tilesPerImage: Int,
                        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                        bias: UnsafePointer<Float>? = nil, epilogue: LinearEpilogue = .plain) throws {
        if epilogue != .plain { try require(bias != nil, "Linear epilogue \(epilogue) needs a bias") }
        try tiled(.forward(epilogue), weight: forwardWeight, pool: pool, images: images, tokens: tokens,
                  tilesPerImage: tilesPerImage, a: x, aRow: inFeatures, bias: bias, out: out, outRow: outFeatures)
    }

    /// Input gradient `dx[r, :] = dy[r, :]·W` (written) for the `images × tokens` rows of
    /// `dy` [rows × out], tiled as `forward`.
    public func backwardInput(pool: WorkerPool, images: Int, tokens: Int, tilesPerImage: Int,
                              dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) throws {
        try tiled(.inputGradient, weight: inputGradientWeight, pool: pool, images: images, tokens: tokens,
                  tilesPerImage: tilesPerImage, a: dy, aRow: outFeatures, bias: nil, out: dx, outRow: inFeatures)
    }

    /// Weight gradient `dweight += dyᵀ·x` over `rows` rows of `dy` [rows × out] and `x`
    /// [rows × in]; the output features are split between the workers (each owns whole rows of dW).
    public func backwardWeights(pool: WorkerPool, rows: Int, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                dweight: UnsafeMutablePointer<Float>) throws {
        try require(rows >= 1, "weight gradient over \(rows) rows")
        let parts = min(pool.threadCount, outFeatures)
        let sized = try kernels(.weightGradient(rows: rows), splitting: outFeatures, into: parts)
        let inF = inFeatures, outF = outFeatures
        try dispatch(pool: pool) { worker, message in
            guard worker < parts else { return true }
            let span = WorkerPool.split(outF, parts: parts, index: worker)
            let k = sized.for(span)
            return tf_matmul_run(k.execs[worker], dy + span.lowerBound, x, nil, dweight + span.lowerBound * inF, message,
                                 TokenLinear.messageSize) == 0
        }
    }

    private func tiled(_ product: Product, weight: PackedWeight, pool: WorkerPool, images: Int, tokens: Int, tilesPerImage: Int,
                       a: UnsafePointer<Float>, aRow: Int, bias: UnsafePointer<Float>?,
                       out: UnsafeMutablePointer<Float>, outRow: Int) throws {
        guard let packed = weight.data else { throw TransFaceError(.misuse, "TokenLinear used before its weight was packed") }
        try require(tilesPerImage >= 1 && tilesPerImage <= tokens, "\(tilesPerImage) tiles for \(tokens) tokens")
        let sized = try kernels(product, splitting: tokens, into: tilesPerImage)
        let tasks = images * tilesPerImage
        try dispatch(pool: pool) { worker, message in
            for task in WorkerPool.split(tasks, parts: pool.threadCount, index: worker) {
                let tile = WorkerPool.split(tokens, parts: tilesPerImage, index: task % tilesPerImage)
                let row = (task / tilesPerImage) * tokens + tile.lowerBound
                let k = sized.for(tile)
                if tf_matmul_run(k.execs[worker], a + row * aRow, packed, bias, out + row * outRow, message,
                                 TokenLinear.messageSize) != 0 { return false }
            }
            return true
        }
    }

    /// The kernels for the pieces `WorkerPool.split(count, parts:)` cuts (their sizes differ by at
    /// most one: two kernels), made before a dispatch.
    private func kernels(_ product: Product, splitting count: Int, into parts: Int) throws -> SplitKernels {
        SplitKernels(large: try kernel(product, m: WorkerPool.split(count, parts: parts, index: 0).count),
                     small: try kernel(product, m: WorkerPool.split(count, parts: parts, index: parts - 1).count))
    }

    private struct SplitKernels {
        let large, small: Kernel
        /// The kernel for one piece of the split.
        func `for`(_ piece: Range<Int>) -> Kernel { piece.count == large.rows ? large : small }
    }

    /// Runs `body(worker, message)` on every worker (the kernels it uses live in `kernels`); a
    /// `false` return leaves a message that is thrown.
    private func dispatch(pool: WorkerPool, _ body: (Int, UnsafeMutablePointer<CChar>) -> Bool) throws {
        try require(pool.threadCount <= workers, "pool of \(pool.threadCount) workers exceeds the Linear's \(workers)")
        let messages = self.messages, size = TokenLinear.messageSize
        pool.run { worker in
            let message = messages + worker * size
            message[0] = 0
            if !body(worker, message) && message[0] == 0 { message[0] = 63 }  // "?"
        }
        for w in 0..<pool.threadCount where messages[w * size] != 0 {
            throw TransFaceError(.internal, String(cString: messages + w * size))
        }
    }

    private func pack(_ weight: UnsafePointer<Float>, into target: inout PackedWeight, using kernel: Kernel) throws {
        let bytes = tf_matmul_packed_weight_bytes(kernel.matmul)
        if target.data == nil || bytes != target.bytes {
            free(target.data)
            target = PackedWeight()
            guard let p = aligned_alloc(64, (bytes + 63) / 64 * 64) else {
                throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes of packed weights")
            }
            target = PackedWeight(data: p, bytes: bytes)
        }
        let destination = target.data
        try call { tf_matmul_pack_weight(kernel.matmul, weight, destination, $0, $1) }
    }

    /// The kernel for `product` on `m` rows, made on first use. Kernels of one product share
    /// the packed layout (checked).
    private func kernel(_ product: Product, m: Int) throws -> Kernel {
        let key = Key(product: product, m: m)
        if let k = kernels[key] { return k }
        let inF = Int64(inFeatures), outF = Int64(outFeatures)
        var shape = tf_matmul_shape()
        shape.m = Int64(m)
        shape.precision = precision == .bf16 ? TF_MATMUL_BF16 : TF_MATMUL_F32
        shape.packed_b = 1
        switch product {
        case .forward(let epilogue):          // x[m × in] · Wᵀ
            (shape.n, shape.k, shape.a_row_stride, shape.a_col_stride) = (outF, inF, inF, 1)
            (shape.b_row_stride, shape.b_col_stride, shape.ldy, shape.epilogue) = (1, inF, outF, epilogue.code)
        case .inputGradient:                  // dy[m × out] · W
            try require(precision == .fp32, "backward products run in float32")
            (shape.n, shape.k, shape.a_row_stride, shape.a_col_stride) = (inF, outF, outF, 1)
            (shape.b_row_stride, shape.b_col_stride, shape.ldy, shape.epilogue) = (inF, 1, inF, TF_MATMUL_PLAIN)
        case .weightGradient(let rows):       // dW[m × in] += dyᵀ[m × rows] · x[rows × in]
            try require(precision == .fp32, "backward products run in float32")
            (shape.n, shape.k, shape.a_row_stride, shape.a_col_stride) = (inF, Int64(rows), 1, outF)
            (shape.b_row_stride, shape.b_col_stride, shape.ldy, shape.epilogue) = (inF, 1, inF, TF_MATMUL_ACCUMULATE)
            shape.packed_b = 0
        }
        let k = try MatmulBackend.creating { () throws -> Kernel in
            var handle: OpaquePointer?
            try call { tf_matmul_create(&handle, &shape, $0, $1) }
            let kernel = Kernel(handle!, rows: m)
            for _ in 0..<workers {
                var exec: OpaquePointer?
                try call { tf_matmul_exec_create(kernel.matmul, &exec, $0, $1) }
                kernel.execs.append(exec!)
            }
            return kernel
        }
        if shape.packed_b != 0,
           let sibling = kernels.first(where: { $0.key.product.sharesPacking(with: product) })?.value,
           tf_matmul_same_weight_layout(sibling.matmul, k.matmul) == 0 {
            throw TransFaceError(.internal, "oneDNN chose another weight layout for \(m)-row tiles of a \(inFeatures) → \(outFeatures) Linear")
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
