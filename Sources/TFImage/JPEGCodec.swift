import CTurboJPEG
import TFCore

/// JPEG through TurboJPEG (libjpeg-turbo 2.1 API: tjDecompress2; the library catches libjpeg's
/// errors with its own setjmp and returns -1, so nothing unwinds through Swift).
///
/// The frame header (SOF) is parsed here rather than with tjDecompressHeader3, which in
/// libjpeg-turbo 2.x refuses images whose chroma sampling has no TJSAMP name although
/// tjDecompress2 decodes them. Decoding uses libjpeg's defaults (accurate integer IDCT, fancy
/// upsampling), as OpenCV's imread does, and TJFLAG_LIMITSCANS (at most 500 progressive scans).
enum JPEGCodec {
    struct Header {
        var width: Int
        var height: Int
        var components: Int
    }

    /// Walks the markers from SOI to the first frame header.
    static func header(_ data: UnsafeRawBufferPointer) throws -> Header {
        let b = data.bindMemory(to: UInt8.self)
        let n = b.count
        var i = 2  // after FF D8
        while true {
            guard i < n else { throw TransFaceError.format("JPEG: data ends before the frame header (SOF)") }
            guard b[i] == 0xFF else {
                throw TransFaceError.format("JPEG: expected a marker at byte \(i), found 0x\(String(b[i], radix: 16))")
            }
            while i < n && b[i] == 0xFF { i += 1 }  // fill bytes
            guard i < n else { throw TransFaceError.format("JPEG: data ends before the frame header (SOF)") }
            let marker = b[i]
            i += 1
            switch marker {
            case 0x01, 0xD0...0xD8:  // TEM, RSTn, SOI: no length
                continue
            case 0xD9:
                throw TransFaceError.format("JPEG: end of image before any frame header (SOF)")
            case 0xDA:
                throw TransFaceError.format("JPEG: scan data before the frame header (SOF)")
            case 0x00:
                throw TransFaceError.format("JPEG: invalid marker 0xFF00 at byte \(i - 2)")
            default:
                break
            }
            guard i + 2 <= n else { throw TransFaceError.format("JPEG: data ends inside a marker segment") }
            let length = Int(b[i]) << 8 | Int(b[i + 1])
            guard length >= 2 else { throw TransFaceError.format("JPEG: marker segment of length \(length) at byte \(i)") }
            let isFrame = (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
            if isFrame {
                guard length >= 8 && i + 8 <= n else { throw TransFaceError.format("JPEG: truncated frame header (SOF)") }
                let height = Int(b[i + 3]) << 8 | Int(b[i + 4])
                let width = Int(b[i + 5]) << 8 | Int(b[i + 6])
                let components = Int(b[i + 7])
                guard height > 0 else {
                    throw TransFaceError.format("JPEG: height 0 in the frame header (a DNL marker), which libjpeg does not support")
                }
                guard width > 0 else { throw TransFaceError.format("JPEG: width 0 in the frame header") }
                guard components == 1 || components == 3 || components == 4 else {
                    throw TransFaceError.format("JPEG: \(components) colour components (1, 3 or 4 are supported)")
                }
                return Header(width: width, height: height, components: components)
            }
            i += length
        }
    }

    static func info(_ data: UnsafeRawBufferPointer) throws -> ImageInfo {
        let h = try header(data)
        return ImageInfo(width: h.width, height: h.height, format: .jpeg, channels: h.components)
    }

    static func decode(_ data: UnsafeRawBufferPointer, options: DecodeOptions,
                       into destination: (ImageInfo) throws -> UnsafeMutablePointer<UInt8>) throws -> ImageInfo {
        let h = try header(data)
        try options.check(width: h.width, height: h.height, .jpeg)
        let info = ImageInfo(width: h.width, height: h.height, format: .jpeg, channels: h.components)
        let out = try destination(info)
        guard let handle = tjInitDecompress() else { throw TransFaceError(.outOfMemory, "JPEG: cannot create a TurboJPEG decompressor") }
        defer { tjDestroy(handle) }
        let flags = TJFLAG_LIMITSCANS | (options.acceptDamaged ? 0 : TJFLAG_STOPONWARNING)
        let src = data.bindMemory(to: UInt8.self).baseAddress!
        let status: Int32
        if h.components == 4 {
            // libjpeg converts neither CMYK nor YCCK to RGB: take CMYK and convert here.
            let cmyk = UnsafeMutablePointer<UInt8>.allocate(capacity: h.width * h.height * 4)
            defer { cmyk.deallocate() }
            status = tjDecompress2(handle, src, UInt(data.count), cmyk, Int32(h.width), Int32(h.width * 4),
                                   Int32(h.height), Int32(TJPF_CMYK.rawValue), flags)
            if status == 0 || tolerated(handle, options) { cmykToRGB(cmyk, out, count: h.width * h.height) }
        } else {
            status = tjDecompress2(handle, src, UInt(data.count), out, Int32(h.width), Int32(h.width * 3),
                                   Int32(h.height), Int32(TJPF_RGB.rawValue), flags)
        }
        if status != 0 && !tolerated(handle, options) {
            let message = String(cString: tjGetErrorStr2(handle))
            if tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue) {
                throw TransFaceError.format("JPEG: damaged data: \(message) (accept_damaged keeps what can be decoded)")
            }
            throw TransFaceError.format("JPEG: \(message)")
        }
        return info
    }

    /// A warning (not an error) when damaged images are accepted.
    private static func tolerated(_ handle: tjhandle, _ options: DecodeOptions) -> Bool {
        options.acceptDamaged && tjGetErrorCode(handle) == Int32(TJERR_WARNING.rawValue)
    }

    /// OpenCV's CMYK to RGB (icvCvt_CMYK2BGR_8u_C4C3R), for Adobe-inverted CMYK.
    static func cmykToRGB(_ cmyk: UnsafePointer<UInt8>, _ rgb: UnsafeMutablePointer<UInt8>, count: Int) {
        for p in 0..<count {
            let k = Int(cmyk[4 * p + 3])
            for c in 0..<3 {
                rgb[3 * p + c] = UInt8(truncatingIfNeeded: k - ((255 - Int(cmyk[4 * p + c])) * k >> 8))
            }
        }
    }

    /// Encodes 1 (grey), 3 (RGB) or 4 (CMYK) channel pixels.
    static func encode(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int, quality: Int,
                       subsampling: JPEGSubsampling, progressive: Bool) throws -> [UInt8] {
        try require(width >= 1 && height >= 1 && width <= 65_500 && height <= 65_500,
                    "JPEG: cannot encode a \(width)x\(height) image (sides 1 to 65500)")
        try require((1...100).contains(quality), "JPEG: quality \(quality) is not in 1...100")
        let format: TJPF
        switch channels {
        case 1: format = TJPF_GRAY
        case 3: format = TJPF_RGB
        case 4: format = TJPF_CMYK
        default: throw TransFaceError.invalidArgument("JPEG: cannot encode \(channels) channels (1, 3 or 4)")
        }
        let samp: TJSAMP = channels == 1 ? TJSAMP_GRAY : subsampling == .s444 ? TJSAMP_444 : subsampling == .s422 ? TJSAMP_422 : TJSAMP_420
        guard let handle = tjInitCompress() else { throw TransFaceError(.outOfMemory, "JPEG: cannot create a TurboJPEG compressor") }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        defer { if let buffer { tjFree(buffer) } }
        let flags = TJFLAG_ACCURATEDCT | (progressive ? TJFLAG_PROGRESSIVE : 0)
        guard tjCompress2(handle, pixels, Int32(width), Int32(width * channels), Int32(height), Int32(format.rawValue),
                          &buffer, &size, Int32(samp.rawValue), Int32(quality), flags) == 0, let buffer else {
            throw TransFaceError.format("JPEG: cannot encode: \(String(cString: tjGetErrorStr2(handle)))")
        }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }
}

/// Chroma subsampling of encoded JPEGs.
public enum JPEGSubsampling: Sendable {
    case s444, s422, s420
}
