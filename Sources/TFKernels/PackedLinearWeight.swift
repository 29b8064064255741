import CDNNLMatmul
import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// One Linear weight (PyTorch layout [out × in]) reordered into the matmul backend's blocked
/// layout for one product — the forward product `x·Wᵀ` or the input gradient `dy·W` — in float32
/// or bf16. Read-only once packed: the `TokenLinear`s of many contexts can share one (the layout
/// depends only on the shape, the precision and the process-wide instruction set; `TokenLinear`
/// checks it against every primitive that reads it).
public final class PackedLinearWeight {
    /// Which product reads the weight.
    public enum Use: Sendable { case forward, inputGradient }

    public let inFeatures: Int
    public let outFeatures: Int
    public let precision: Precision
    public let use: Use
    /// Bytes of the packed weight.
    public let bytes: Int
    let data: UnsafeMutableRawPointer
    /// The one-row primitive whose weight layout this is (and that packs and unpacks it).
    let layout: MatmulPrimitive

    /// Allocates (unfilled) packed storage for a `inFeatures → outFeatures` Linear's weight.
    public init(inFeatures: Int, outFeatures: Int, precision: Precision, use: Use) throws {
        try require(inFeatures >= 1 && outFeatures >= 1, "Linear \(inFeatures) → \(outFeatures) is empty")
        try require(use == .forward || precision == .fp32, "backward products run in float32")
        try MatmulBackend.check(precision)
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.precision = precision
        self.use = use
        layout = try MatmulPrimitive(try use.product.shape(m: 1, inFeatures: inFeatures, outFeatures: outFeatures,
                                                            precision: precision))
        bytes = tf_matmul_packed_weight_bytes(layout.handle)
        guard let p = aligned_alloc(64, (bytes + 63) / 64 * 64) else {
            throw TransFaceError(.outOfMemory, "cannot allocate \(bytes) bytes of packed weights")
        }
        data = p
    }

    deinit { free(data) }

    /// Packs `weight` [outFeatures × inFeatures] (row-major float32).
    public func pack(from weight: UnsafePointer<Float>) throws {
        let (handle, data) = (layout.handle, data)
        try callBackend { tf_matmul_pack_weight(handle, weight, data, $0, $1) }
    }

    /// Writes the weight back as [outFeatures × inFeatures] float32: exactly what was packed for
    /// float32, the bf16-rounded values for bf16.
    public func unpack(into weight: UnsafeMutablePointer<Float>) throws {
        let (handle, data) = (layout.handle, data)
        try callBackend { tf_matmul_unpack_weight(handle, data, weight, $0, $1) }
    }
}

extension PackedLinearWeight.Use {
    var product: LinearProduct { self == .forward ? .forward(.plain) : .inputGradient }
}
