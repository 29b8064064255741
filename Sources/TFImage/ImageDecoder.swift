import TFCore

/// Decodes JPEG (libjpeg-turbo), PNG (libpng) and PNM images to 8-bit RGB.
///
/// * The format is recognised from the first bytes, never from a file name.
/// * Grey images are expanded to R = G = B; alpha is dropped without compositing (the colour
///   values as stored, like OpenCV's `imread`); 16-bit samples are scaled to 8 bits; CMYK JPEGs
///   are converted as OpenCV does (Adobe-inverted CMYK, as libjpeg delivers it).
/// * The header is checked against `DecodeOptions.maxPixels` before anything is allocated.
/// * Corrupt, truncated or foreign data raises `TransFaceError` (`.format`), never a crash;
///   libpng is driven through its simplified `png_image` API, which reports errors by return
///   code, and TurboJPEG catches libjpeg's errors itself.
/// * EXIF orientation is not applied: pixels come out in stored order.
public enum ImageDecoder {
    /// The header of an encoded image, checked against the pixel limit. Only the header is
    /// read: damage in the image data is found by `decode`.
    public static func info(_ data: UnsafeRawBufferPointer, options: DecodeOptions = .init()) throws -> ImageInfo {
        let info: ImageInfo
        switch try format(of: data) {
        case .jpeg: info = try JPEGCodec.info(data)
        case .png: info = try PNGCodec.info(data)
        case .pnm: info = try PNMCodec.header(data).info
        }
        try options.check(width: info.width, height: info.height, info.format)
        return info
    }

    /// Decodes into memory supplied by `destination`, which is called once, after the header
    /// has been checked, with the image's info; it must return room for `info.rgbByteCount`
    /// bytes (or throw). Returns the info.
    @discardableResult
    public static func decode(_ data: UnsafeRawBufferPointer, options: DecodeOptions = .init(),
                              into destination: (ImageInfo) throws -> UnsafeMutablePointer<UInt8>) throws -> ImageInfo {
        switch try format(of: data) {
        case .jpeg: return try JPEGCodec.decode(data, options: options, into: destination)
        case .png: return try PNGCodec.decode(data, options: options, into: destination)
        case .pnm: return try PNMCodec.decode(data, options: options, into: destination)
        }
    }

    /// Decodes to a new `RGBImage`.
    public static func decode(_ data: UnsafeRawBufferPointer, options: DecodeOptions = .init()) throws -> RGBImage {
        let header = try info(data, options: options)
        let pixels = try [UInt8](unsafeUninitializedCapacity: header.rgbByteCount) { buffer, count in
            buffer.initialize(repeating: 0)
            try decode(data, options: options) { info in
                guard info.width == header.width && info.height == header.height else {
                    throw TransFaceError(.internal, "image header read twice gave \(header.width)x\(header.height) and \(info.width)x\(info.height)")
                }
                return buffer.baseAddress!
            }
            count = header.rgbByteCount
        }
        return RGBImage(width: header.width, height: header.height, pixels: pixels)
    }

    public static func decode(_ bytes: [UInt8], options: DecodeOptions = .init()) throws -> RGBImage {
        try bytes.withUnsafeBytes { try decode($0, options: options) }
    }

    /// Decodes an image file; errors name the path.
    public static func decodeFile(_ path: String, options: DecodeOptions = .init()) throws -> RGBImage {
        let bytes = try readImageFile(path)
        return try naming(path) { try decode(bytes, options: options) }
    }

    /// Reads an image file whole, after checking from its first bytes that it is an image of a
    /// supported format (so that a large foreign file is refused without reading it).
    public static func readImageFile(_ path: String) throws -> [UInt8] {
        let file = try ReadableFile(path: path)
        guard file.size > 0 else { throw TransFaceError.format("'\(path)' is empty") }
        guard file.size <= UInt64(Int.max) else { throw TransFaceError.invalidArgument("'\(path)' is too large") }
        let head = try file.readBytes(at: 0, count: Int(min(file.size, 16)))
        try head.withUnsafeBytes { h in
            if ImageFormat.detect(h) == nil { throw TransFaceError.format("'\(path)' is \(ImageFormat.describeUnknown(h))") }
        }
        return try file.readBytes(at: 0, count: Int(file.size))
    }

    /// Runs `body`, prefixing the message of a thrown `TransFaceError` with the path.
    public static func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as TransFaceError {
            throw TransFaceError(e.kind, "'\(path)': \(e.message)")
        }
    }

    static func format(of data: UnsafeRawBufferPointer) throws -> ImageFormat {
        guard data.count > 0 else { throw TransFaceError.format("no image data (0 bytes)") }
        guard let f = ImageFormat.detect(data) else { throw TransFaceError.format(ImageFormat.describeUnknown(data)) }
        return f
    }
}
