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
/// layout: packed here (`pack`, `packForBackward`) or shared with other Linears (`adopt`).
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
    private var forwardWeight: PackedLinearWeight?, inputGradientWeight: PackedLinearWeight?
    /// Whether `forwardWeight` was packed here (false: adopted, never written).
    private var ownsForwardWeight = false
    private var kernels: [Key: Kernel] = [:]
    private let messages: UnsafeMutablePointer<CChar>
    private static let messageSize = 256

    private struct Key: Hashable { let product: LinearProduct; let m: Int }

    /// One primitive and an execution state per worker.
    private final class Kernel {
        let primitive: MatmulPrimitive
        let rows: Int
        var execs: [OpaquePointer] = []
        init(_ primitive: MatmulPrimitive, rows: Int) { self.primitive = primitive; self.rows = rows }
        deinit { for e in execs { tf_matmul_exec_free(e) } }
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
        messages.deallocate()
    }

    /// Bytes of the packed weights this Linear packed itself (adopted ones belong to their owner).
    public var weightBytes: Int { (ownsForwardWeight ? forwardWeight?.bytes ?? 0 : 0) + (inputGradientWeight?.bytes ?? 0) }

    /// Packs `weight` [outFeatures × inFeatures] (row-major) for the forward products that follow.
    public func pack(_ weight: UnsafePointer<Float>) throws {
        if !ownsForwardWeight || forwardWeight == nil {
            forwardWeight = nil
            let packed = try PackedLinearWeight(inFeatures: inFeatures, outFeatures: outFeatures, precision: precision, use: .forward)
            try checkLayout(of: packed)
            forwardWeight = packed
            ownsForwardWeight = true
        }
        try forwardWeight!.pack(from: weight)
    }

    /// Reads the forward products' weight from `packed` (shared, never written here).
    public func adopt(_ packed: PackedLinearWeight) throws {
        try require(packed.inFeatures == inFeatures && packed.outFeatures == outFeatures && packed.precision == precision
                    && packed.use == .forward,
                    "a packed \(packed.inFeatures) → \(packed.outFeatures) \(packed.precision.rawValue) weight does not fit a \(inFeatures) → \(outFeatures) \(precision.rawValue) Linear")
        try checkLayout(of: packed)
        forwardWeight = packed
        ownsForwardWeight = false
    }

    /// Packs `weight` for the input-gradient products that follow (float32 only).
    public func packForBackward(_ weight: UnsafePointer<Float>) throws {
        if inputGradientWeight == nil {
            let packed = try PackedLinearWeight(inFeatures: inFeatures, outFeatures: outFeatures, precision: precision,
                                                use: .inputGradient)
            try checkLayout(of: packed)
            inputGradientWeight = packed
        }
        try inputGradientWeight!.pack(from: weight)
    }

    /// `out[r, :] = epilogue(x[r, :]·Wᵀ)` for the `images × tokens` rows of `x` [rows × in] into
    /// `out` [rows × out], each image cut into `tilesPerImage` row tiles spread over `pool`.
    /// `afterTile(firstRow, rows)` runs on the worker that just wrote those rows of
    /// `out` (row-wise work fused into the product's pass: no extra dispatch, the rows still in cache).
    public func forward(pool: WorkerPool, images: Int, tokens: Int, tilesPerImage: Int,
                        x: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                        bias: UnsafePointer<Float>? = nil, epilogue: LinearEpilogue = .plain,
                        afterTile: (Int, Int) -> Void = { _, _ in }) throws {
        if epilogue != .plain { try require(bias != nil, "Linear epilogue \(epilogue) needs a bias") }
        try tiled(.forward(epilogue), weight: forwardWeight, pool: pool, images: images, tokens: tokens,
                  tilesPerImage: tilesPerImage, a: x, aRow: inFeatures, bias: bias, out: out, outRow: outFeatures,
                  afterTile: afterTile)
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

    private func tiled(_ product: LinearProduct, weight: PackedLinearWeight?, pool: WorkerPool, images: Int, tokens: Int,
                       tilesPerImage: Int, a: UnsafePointer<Float>, aRow: Int, bias: UnsafePointer<Float>?,
                       out: UnsafeMutablePointer<Float>, outRow: Int, afterTile: (Int, Int) -> Void = { _, _ in }) throws {
        guard let packed = weight?.data else { throw TransFaceError(.misuse, "TokenLinear used before its weight was packed") }
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
                afterTile(row, tile.count)
            }
            return true
        }
    }

    /// The kernels for the pieces `WorkerPool.split(count, parts:)` cuts (their sizes differ by at
    /// most one: two kernels), made before a dispatch.
    private func kernels(_ product: LinearProduct, splitting count: Int, into parts: Int) throws -> SplitKernels {
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

    /// The packed weight `product` reads (nil: the weight-gradient product reads none).
    private func weight(for product: LinearProduct) -> PackedLinearWeight? {
        switch product {
        case .forward: return forwardWeight
        case .inputGradient: return inputGradientWeight
        case .weightGradient: return nil
        }
    }

    /// Throws unless every primitive already made for `packed`'s product reads its layout.
    private func checkLayout(of packed: PackedLinearWeight) throws {
        for (key, k) in kernels where key.product.sharesPacking(with: packed.use.product) {
            try requireSameLayout(packed, k)
        }
    }

    private func requireSameLayout(_ packed: PackedLinearWeight, _ k: Kernel) throws {
        guard packed.layout.sameWeightLayout(as: k.primitive) else {
            throw TransFaceError(.internal, "oneDNN chose another weight layout for \(k.rows)-row tiles of a \(inFeatures) → \(outFeatures) Linear")
        }
    }

    /// The kernel for `product` on `m` rows, made on first use (checked against the layout of the
    /// packed weight it reads).
    private func kernel(_ product: LinearProduct, m: Int) throws -> Kernel {
        let key = Key(product: product, m: m)
        if let k = kernels[key] { return k }
        let shape = try product.shape(m: m, inFeatures: inFeatures, outFeatures: outFeatures, precision: precision)
        let k = Kernel(try MatmulPrimitive(shape), rows: m)
        for _ in 0..<workers {
            var exec: OpaquePointer?
            try callBackend { tf_matmul_exec_create(k.primitive.handle, &exec, $0, $1) }
            k.execs.append(exec!)
        }
        if let packed = weight(for: product) { try requireSameLayout(packed, k) }
        kernels[key] = k
        return k
    }
}
