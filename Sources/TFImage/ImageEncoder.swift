import TFCore

/// Encodes 8-bit images (aligned crops, test images): PNG (libpng), JPEG (TurboJPEG), PGM/PPM.
public enum ImageEncoder {
    /// PNG of 8-bit grey (1), grey + alpha (2), RGB (3) or RGBA (4) pixels; rows `stride` bytes
    /// apart (0 = width * channels).
    public static func png(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int = 3,
                           stride: Int = 0) throws -> [UInt8] {
        try PNGCodec.encode(pixels, width: width, height: height, channels: channels,
                            stride: stride == 0 ? width * channels : stride)
    }

    public static func png(_ image: RGBImage) throws -> [UInt8] {
        try image.pixels.withUnsafeBufferPointer { try png($0.baseAddress!, width: image.width, height: image.height) }
    }

    /// JPEG of grey (1), RGB (3) or CMYK (4) pixels, rows packed.
    public static func jpeg(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int = 3,
                            quality: Int = 95, subsampling: JPEGSubsampling = .s420,
                            progressive: Bool = false) throws -> [UInt8] {
        try JPEGCodec.encode(pixels, width: width, height: height, channels: channels, quality: quality,
                             subsampling: subsampling, progressive: progressive)
    }

    public static func jpeg(_ image: RGBImage, quality: Int = 95, subsampling: JPEGSubsampling = .s420) throws -> [UInt8] {
        try image.pixels.withUnsafeBufferPointer {
            try jpeg($0.baseAddress!, width: image.width, height: image.height, quality: quality, subsampling: subsampling)
        }
    }

    /// Binary PGM (1 channel) or PPM (3 channels), rows packed.
    public static func pnm(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int = 3) throws -> [UInt8] {
        try PNMCodec.encode(pixels, width: width, height: height, channels: channels)
    }

    /// Writes encoded bytes to `path` atomically (temporary file, fsync, rename).
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let writer = try AtomicFileWriter(path: path)
        try writer.write(bytes)
        try writer.commit()
    }
}
