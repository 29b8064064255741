import TFCore

/// The encoded formats the decoder reads.
public enum ImageFormat: Int32, Sendable, CustomStringConvertible {
    case jpeg = 1
    case png = 2
    /// Netpbm: PBM, PGM, PPM (P1 to P6).
    case pnm = 3

    public var description: String {
        switch self {
        case .jpeg: return "JPEG"
        case .png: return "PNG"
        case .pnm: return "PNM"
        }
    }

    /// The format of an encoded image, recognised from its first bytes (nil when unknown).
    public static func detect(_ data: UnsafeRawBufferPointer) -> ImageFormat? {
        let b = data.bindMemory(to: UInt8.self)
        if b.count >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF { return .jpeg }
        if b.count >= 8 && Array(b[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] { return .png }
        if b.count >= 3 && b[0] == UInt8(ascii: "P") && (UInt8(ascii: "1")...UInt8(ascii: "6")).contains(b[1])
            && PNMCodec.isSpace(b[2]) {
            return .pnm
        }
        return nil
    }

    /// Words for an error message about data that is none of the supported formats.
    static func describeUnknown(_ data: UnsafeRawBufferPointer) -> String {
        let b = data.bindMemory(to: UInt8.self)
        func starts(_ s: String) -> Bool { b.count >= s.utf8.count && zip(b, s.utf8).allSatisfy { $0 == $1 } }
        var known: String?
        if starts("GIF8") { known = "GIF" }
        else if starts("BM") { known = "BMP" }
        else if starts("II*\0") || starts("MM\0*") { known = "TIFF" }
        else if starts("RIFF") && b.count >= 12 && Array(b[8..<12]) == Array("WEBP".utf8) { known = "WebP" }
        else if b.count >= 12 && Array(b[4..<8]) == Array("ftyp".utf8) { known = "HEIF/AVIF/MP4" }
        else if starts("\0\0\0\u{0C}jP") || starts("\u{FF}\u{4F}\u{FF}\u{51}") { known = "JPEG 2000" }
        else if starts("P7") { known = "PAM" }
        if let known { return "a \(known) image, which is not supported (JPEG, PNG and PNM are)" }
        let head = b.prefix(8).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        return "not a JPEG, PNG or PNM image (first bytes: \(head.joined(separator: " ")))"
    }
}

/// What an image header says.
public struct ImageInfo: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var format: ImageFormat
    /// Channels stored in the file: 1 grey, 2 grey + alpha, 3 colour, 4 colour + alpha or CMYK.
    public var channels: Int

    public init(width: Int, height: Int, format: ImageFormat, channels: Int) {
        self.width = width
        self.height = height
        self.format = format
        self.channels = channels
    }

    /// Bytes of the decoded RGB image: width * height * 3.
    public var rgbByteCount: Int { width * height * 3 }
}

/// How the decoder treats large and damaged images.
public struct DecodeOptions: Sendable, Equatable {
    public static let defaultMaxPixels: UInt64 = 100_000_000

    /// Images whose header claims more pixels (width * height) are refused before anything is
    /// allocated; 0 = no limit beyond the formats' own.
    public var maxPixels: UInt64
    /// false (default): a JPEG that libjpeg can only decode with a warning (truncated or
    /// corrupt entropy-coded data) is refused. true: it is returned as libjpeg reconstructs it.
    public var acceptDamaged: Bool

    public init(maxPixels: UInt64 = DecodeOptions.defaultMaxPixels, acceptDamaged: Bool = false) {
        self.maxPixels = maxPixels
        self.acceptDamaged = acceptDamaged
    }

    /// Refuses dimensions that are not positive, exceed 2^31 - 1 or exceed the pixel limit.
    func check(width: Int, height: Int, _ format: ImageFormat) throws {
        guard width >= 1 && height >= 1 else {
            throw TransFaceError.format("\(format) header gives an empty image (\(width)x\(height))")
        }
        guard width <= Int(Int32.max) && height <= Int(Int32.max) else {
            throw TransFaceError.invalidArgument("\(format) image is \(width)x\(height): a side exceeds 2^31 - 1")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        let (_, overflow3) = pixels.multipliedReportingOverflow(by: 4)
        guard !overflow && !overflow3 else {
            throw TransFaceError.invalidArgument("\(format) image is \(width)x\(height): too large to address")
        }
        if maxPixels > 0 && UInt64(pixels) > maxPixels {
            throw TransFaceError.invalidArgument(
                "\(format) image is \(width)x\(height) = \(pixels) pixels, more than the limit of \(maxPixels) (max_pixels)")
        }
    }
}

/// A decoded image: rows of interleaved R, G, B bytes, no padding.
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)x\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}
