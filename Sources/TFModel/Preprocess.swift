import TFCore

/// How uint8 images are prepared for a model; stored in the model file.
public struct Preprocess: Equatable, Sendable {
    public enum ChannelOrder: Int32, Sendable { case rgb = 0, bgr = 1 }

    public var inputWidth: Int
    public var inputHeight: Int
    /// Channel order of the network's input. Images are always given as RGB; a BGR network
    /// (e.g. one trained on OpenCV images) gets the channels reversed by the library.
    /// Pixel value fed to network channel c: `(u8 / 255 − mean[c]) / std[c]`.
    public var mean: [Float]
    public var std: [Float]
    public var channelOrder: ChannelOrder
    /// Five (x, y) landmark positions in input pixels (ArcFace template for 112×112).
    public var alignTemplate: [Float]

    public init(inputWidth: Int, inputHeight: Int, mean: [Float], std: [Float], channelOrder: ChannelOrder,
                alignTemplate: [Float]) {
        self.inputWidth = inputWidth
        self.inputHeight = inputHeight
        self.mean = mean
        self.std = std
        self.channelOrder = channelOrder
        self.alignTemplate = alignTemplate
    }

    /// insightface `arcface_dst` for 112×112.
    public static let arcfaceTemplate112: [Float] = [
        38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041,
    ]

    /// The official preprocessing for a square input of `size` pixels (template scaled).
    public static func official(size: Int) -> Preprocess {
        let s = Float(size) / 112
        return Preprocess(inputWidth: size, inputHeight: size, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5],
                          channelOrder: .rgb, alignTemplate: arcfaceTemplate112.map { $0 * s })
    }

    public func validate(for config: ViTConfig) throws {
        try require(inputWidth == config.imgSize && inputHeight == config.imgSize,
                    "preprocess: input \(inputWidth)x\(inputHeight) does not match img_size \(config.imgSize)")
        try require(mean.count == config.inChannels && std.count == config.inChannels,
                    "preprocess: mean and std need \(config.inChannels) values each")
        try require(mean.allSatisfy(\.isFinite), "preprocess: mean must be finite")
        try require(std.allSatisfy { $0.isFinite && $0 > 0 }, "preprocess: std must be finite and positive")
        try require(alignTemplate.count == 10 && alignTemplate.allSatisfy(\.isFinite),
                    "preprocess: the alignment template needs 10 finite values")
    }

    /// 256 normalised values per channel, computed exactly as `(u8 / 255 − mean) / std` in float32.
    public func lookupTable() -> [Float] {
        var lut = [Float](repeating: 0, count: mean.count * 256)
        for c in 0..<mean.count {
            for v in 0..<256 { lut[c * 256 + v] = (Float(v) / 255 - mean[c]) / std[c] }
        }
        return lut
    }
}
