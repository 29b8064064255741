import TFModel

/// A model's input normalisation in the float32 chains around DPAP, per channel of the RGB
/// images (a BGR network's channel c reads image channel 2 − c, so its mean and std are taken
/// in image order): image value x = (u8/255 − mean)/std for the first pass, `img_original` =
/// (x·std + mean)·255, and after DPAP the training pass reads ((v/255) − mean)/std. With the
/// official mean = std = 0.5 these are train.py's chains operation for operation.
public struct PixelNormalization: Sendable {
    /// Per image channel (R, G, B).
    public let mean: [Float], std: [Float]
    /// `img_original` per image channel and byte value.
    let originalScaleTables: [[Float]]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
        var tables: [[Float]] = []
        for c in 0..<mean.count {
            tables.append((0..<256).map { u in
                let normalized = (Float(u) / 255 - mean[c]) / std[c]
                return ((normalized * std[c]) + mean[c]) * 255
            })
        }
        originalScaleTables = tables
    }

    /// The normalisation a network with `preprocess` sees, in image channel order.
    public init(_ preprocess: Preprocess) {
        let reversed = preprocess.channelOrder == .bgr
        self.init(mean: reversed ? preprocess.mean.reversed() : preprocess.mean,
                  std: reversed ? preprocess.std.reversed() : preprocess.std)
    }

    /// mean = std = 0.5 on every channel (the official data loader and train.py).
    public static let official = PixelNormalization(mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])

    @inline(__always)
    func originalScale(_ normalized: Float, channel c: Int) -> Float { ((normalized * std[c]) + mean[c]) * 255 }

    @inline(__always)
    func normalize(_ original: Float, channel c: Int) -> Float { (original / 255 - mean[c]) / std[c] }

    /// `img_original` (HWC, `count` values) from uint8 images of the same layout.
    public func originalScale(fromRGB8 images: UnsafePointer<UInt8>, count: Int, into out: UnsafeMutablePointer<Float>) {
        let channels = mean.count
        for i in 0..<count { out[i] = originalScaleTables[i % channels][Int(images[i])] }
    }

    /// The training pass's input (HWC, what `ForwardInput.normalizedHWC` reads) from
    /// `img_original` after DPAP. `out` may be `images` (in place).
    public func normalizedInput(from images: UnsafePointer<Float>, count: Int, into out: UnsafeMutablePointer<Float>) {
        let channels = mean.count
        for i in 0..<count { out[i] = normalize(images[i], channel: i % channels) }
    }
}
