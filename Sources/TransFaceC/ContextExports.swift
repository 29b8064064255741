import CTransFace
import TFCore
import TFKernels
import TFModel

/// Inference contexts and embedding.

@c public func transface_context_default_params() -> transface_context_params {
    var p = transface_context_params()
    p.struct_size = UInt32(MemoryLayout<transface_context_params>.size)
    p.num_threads = 1
    p.max_batch = 8
    p.precision = TRANSFACE_PRECISION_FP32
    return p
}

@c public func transface_context_params_init(_ params: UnsafeMutablePointer<transface_context_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_context_params_init") { try initStruct(params, size: size, defaults: transface_context_default_params()) }
}

@c public func transface_context_create(_ model: OpaquePointer?, _ params: UnsafePointer<transface_context_params>?,
                                        _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_context_create") {
        let out = try required(out, "out_context")
        out.pointee = nil
        let m = try Handle.get(model, ModelHandle.self, "model").model
        let p = try readStruct(params, defaults: transface_context_default_params())
        try require(p.num_threads >= 1, "num_threads must be at least 1, got \(p.num_threads)")
        try require(p.max_batch >= 1, "max_batch must be at least 1, got \(p.max_batch)")
        let precision: Precision
        switch p.precision {
        case TRANSFACE_PRECISION_FP32: precision = .fp32
        case TRANSFACE_PRECISION_BF16: precision = .bf16
        default: throw TransFaceError.invalidArgument("precision \(p.precision.rawValue) is not a transface_precision")
        }
        out.pointee = Handle.make(try Embedder(model: m, threads: Int(p.num_threads), maxBatch: Int(p.max_batch),
                                               precision: precision))
    }
}

@c public func transface_context_free(_ context: OpaquePointer?) { Handle.release(context, Embedder.self, "transface_context_free") }

@c public func transface_embed(_ context: OpaquePointer?, _ images: UnsafePointer<UInt8>?, _ count: Int,
                               _ width: Int32, _ height: Int32, _ flags: UInt32,
                               _ embeddings: UnsafeMutablePointer<Float>?, _ capacity: Int) -> transface_status {
    guarded("transface_embed") {
        try embed(context, images, count, width, height, flags,
                  .init(embeddings: try buffer(try required(embeddings, "embeddings"), capacity, "capacity")))
    }
}

@c public func transface_embed_with_patches(
    _ context: OpaquePointer?, _ images: UnsafePointer<UInt8>?, _ count: Int, _ width: Int32, _ height: Int32,
    _ flags: UInt32, _ embeddings: UnsafeMutablePointer<Float>?, _ embeddingsCapacity: Int,
    _ patchWeights: UnsafeMutablePointer<Float>?, _ patchWeightsCapacity: Int,
    _ patchStd: UnsafeMutablePointer<Float>?, _ patchStdCapacity: Int
) -> transface_status {
    guarded("transface_embed_with_patches") {
        let outputs = Embedder.Outputs(
            embeddings: try embeddings.map { try buffer($0, embeddingsCapacity, "embeddings_capacity") },
            patchWeights: try patchWeights.map { try buffer($0, patchWeightsCapacity, "patch_weights_capacity") },
            patchStd: try patchStd.map { try buffer($0, patchStdCapacity, "patch_std_capacity") })
        try embed(context, images, count, width, height, flags, outputs)
    }
}

func buffer(_ p: UnsafeMutablePointer<Float>, _ capacity: Int, _ name: String) throws -> UnsafeMutableBufferPointer<Float> {
    try require(capacity >= 0, "\(name) is negative")
    return UnsafeMutableBufferPointer(start: p, count: capacity)
}

func embed(_ context: OpaquePointer?, _ images: UnsafePointer<UInt8>?, _ count: Int, _ width: Int32, _ height: Int32,
                   _ flags: UInt32, _ outputs: Embedder.Outputs) throws {
    let embedder = try Handle.get(context, Embedder.self, "context")
    let images = try required(images, "images")
    let known = UInt32(TRANSFACE_EMBED_FLIP) | UInt32(TRANSFACE_EMBED_NO_NORMALIZE)
    try require(flags & ~known == 0, "unknown flags 0x\(String(flags & ~known, radix: 16))")
    try require(count >= 1, "count must be at least 1, got \(count)")
    try embedder.embed(images: images, count: count, width: Int(width), height: Int(height),
                       flip: flags & UInt32(TRANSFACE_EMBED_FLIP) != 0,
                       normalize: flags & UInt32(TRANSFACE_EMBED_NO_NORMALIZE) == 0, into: outputs)
}
