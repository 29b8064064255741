import CPNG
import TFCore

/// PNG through libpng's simplified `png_image` API, which catches libpng's errors (longjmp)
/// inside libpng and reports them by return code and `image.message`: nothing unwinds through
/// Swift. Every colour type and bit depth is read (palette, grey, alpha, 16-bit, interlaced).
///
/// * 16-bit files without gAMA/sRGB chunks are taken as sRGB-encoded (PNG_IMAGE_FLAG_16BIT_sRGB),
///   so 16-bit values v come out as about v / 257, not gamma-converted.
/// * Alpha is dropped: the stored colours are returned, not composited (OpenCV's imread does the
///   same).
/// * A file whose gAMA chunk declares a gamma other than sRGB's is converted to sRGB by libpng
///   (OpenCV ignores gAMA); such files are rare.
enum PNGCodec {
    // png.h's composite format macros (not imported into Swift).
    private static let gray = png_uint_32(0)
    private static let grayAlpha = png_uint_32(PNG_FORMAT_FLAG_ALPHA)
    private static let rgb = png_uint_32(PNG_FORMAT_FLAG_COLOR)
    private static let rgba = png_uint_32(PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA)

    private static func begin(_ data: UnsafeRawBufferPointer, _ image: inout png_image) throws {
        image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        guard png_image_begin_read_from_memory(&image, data.baseAddress, data.count) != 0 else {
            let message = messageText(&image)
            png_image_free(&image)
            throw TransFaceError.format("PNG: \(message)")
        }
    }

    static func messageText(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            let s = String(decoding: bytes[0..<end], as: UTF8.self)
            return s.isEmpty ? "cannot be read" : s
        }
    }

    private static func channels(_ format: png_uint_32) -> Int {
        (format & png_uint_32(PNG_FORMAT_FLAG_COLOR) != 0 ? 3 : 1) + (format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0 ? 1 : 0)
    }

    static func info(_ data: UnsafeRawBufferPointer) throws -> ImageInfo {
        var image = png_image()
        try begin(data, &image)
        defer { png_image_free(&image) }
        return ImageInfo(width: Int(image.width), height: Int(image.height), format: .png, channels: channels(image.format))
    }

    static func decode(_ data: UnsafeRawBufferPointer, options: DecodeOptions,
                       into destination: (ImageInfo) throws -> UnsafeMutablePointer<UInt8>) throws -> ImageInfo {
        var image = png_image()
        try begin(data, &image)
        // png_image_finish_read releases the image itself; png_image_free is then a no-op.
        defer { png_image_free(&image) }
        let info = ImageInfo(width: Int(image.width), height: Int(image.height), format: .png, channels: channels(image.format))
        try options.check(width: info.width, height: info.height, .png)
        let hasAlpha = image.format & png_uint_32(PNG_FORMAT_FLAG_ALPHA) != 0
        image.flags |= png_uint_32(PNG_IMAGE_FLAG_16BIT_sRGB)
        image.format = hasAlpha ? rgba : rgb
        let out = try destination(info)
        let pixels = info.width * info.height
        let ok: Int32
        if hasAlpha {
            let rgba = UnsafeMutablePointer<UInt8>.allocate(capacity: pixels * 4)
            defer { rgba.deallocate() }
            ok = png_image_finish_read(&image, nil, rgba, png_int_32(info.width * 4), nil)
            if ok != 0 {
                for p in 0..<pixels {
                    out[3 * p] = rgba[4 * p]
                    out[3 * p + 1] = rgba[4 * p + 1]
                    out[3 * p + 2] = rgba[4 * p + 2]
                }
            }
        } else {
            ok = png_image_finish_read(&image, nil, out, png_int_32(info.width * 3), nil)
        }
        guard ok != 0 else { throw TransFaceError.format("PNG: \(messageText(&image))") }
        return info
    }

    /// Encodes 8-bit grey (1), grey + alpha (2), RGB (3) or RGBA (4) pixels, rows `stride` bytes apart.
    static func encode(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int, stride: Int) throws -> [UInt8] {
        try require(width >= 1 && height >= 1 && width <= 1_000_000 && height <= 1_000_000,
                    "PNG: cannot encode a \(width)x\(height) image")
        try require((1...4).contains(channels), "PNG: cannot encode \(channels) channels (1 to 4)")
        try require(stride >= width * channels && stride <= Int(Int32.max), "PNG: stride \(stride) is too small or too large")
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = [gray, grayAlpha, rgb, rgba][channels - 1]
        var size: png_alloc_size_t = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, pixels, png_int_32(stride), nil) != 0, size > 0 else {
            throw TransFaceError.format("PNG: cannot encode: \(messageText(&image))")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let ok = bytes.withUnsafeMutableBytes { out in
            png_image_write_to_memory(&image, out.baseAddress, &size, 0, pixels, png_int_32(stride), nil)
        }
        guard ok != 0 else { throw TransFaceError.format("PNG: cannot encode: \(messageText(&image))") }
        return Array(bytes.prefix(Int(size)))
    }
}
