import TFCore

/// Netpbm images, parsed here: P1/P4 (bitmap; 1 is black), P2/P5 (grey), P3/P6 (RGB); ASCII
/// and binary; maxval 1 to 65535 (two bytes per sample, big-endian, above 255). Samples are
/// scaled to 0...255 as round(v * 255 / maxval); values above maxval are clamped. Comments
/// (`#` to the end of the line) are allowed wherever whitespace is. Only the first image of a
/// multi-image file is read.
enum PNMCodec {
    struct Header {
        var kind: UInt8          // 1...6
        var width: Int
        var height: Int
        var maxval: Int
        var dataOffset: Int

        var channels: Int { kind == 3 || kind == 6 ? 3 : 1 }
        var info: ImageInfo { ImageInfo(width: width, height: height, format: .pnm, channels: channels) }
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (0x09...0x0D).contains(c) }

    /// Skips whitespace and comments from `i`.
    private static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int) {
        while i < b.count {
            if isSpace(b[i]) {
                i += 1
            } else if b[i] == UInt8(ascii: "#") {
                while i < b.count && b[i] != 0x0A && b[i] != 0x0D { i += 1 }
            } else {
                return
            }
        }
    }

    /// A decimal number at `i` (after whitespace), at most `limit`.
    private static func number(_ b: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ what: String, limit: Int) throws -> Int {
        skipSpace(b, &i)
        guard i < b.count else { throw TransFaceError.format("PNM: data ends before the \(what)") }
        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) else {
            throw TransFaceError.format("PNM: expected the \(what) at byte \(i), found 0x\(String(b[i], radix: 16))")
        }
        var v = 0
        while i < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) {
            v = v * 10 + Int(b[i] - UInt8(ascii: "0"))
            guard v <= limit else { throw TransFaceError.format("PNM: \(what) exceeds \(limit)") }
            i += 1
        }
        return v
    }

    static func header(_ data: UnsafeRawBufferPointer) throws -> Header {
        let b = data.bindMemory(to: UInt8.self)
        guard b.count >= 3, b[0] == UInt8(ascii: "P"), (UInt8(ascii: "1")...UInt8(ascii: "6")).contains(b[1]) else {
            throw TransFaceError.format("PNM: bad magic")
        }
        let kind = b[1] - UInt8(ascii: "0")
        var i = 2
        let width = try number(b, &i, "width", limit: Int(Int32.max))
        let height = try number(b, &i, "height", limit: Int(Int32.max))
        var maxval = 1
        if kind != 1 && kind != 4 {
            maxval = try number(b, &i, "maxval", limit: 65_535)
            guard maxval >= 1 else { throw TransFaceError.format("PNM: maxval 0") }
        }
        if kind >= 4 {
            // Binary rasters start after exactly one whitespace character.
            guard i < b.count else { throw TransFaceError.format("PNM: data ends after the header") }
            guard isSpace(b[i]) else { throw TransFaceError.format("PNM: no whitespace after the header") }
            i += 1
        }
        return Header(kind: kind, width: width, height: height, maxval: maxval, dataOffset: i)
    }

    static func decode(_ data: UnsafeRawBufferPointer, options: DecodeOptions,
                       into destination: (ImageInfo) throws -> UnsafeMutablePointer<UInt8>) throws -> ImageInfo {
        let h = try header(data)
        try options.check(width: h.width, height: h.height, .pnm)
        let b = data.bindMemory(to: UInt8.self)
        let available = b.count - h.dataOffset
        let samples = h.width * h.height * h.channels  // cannot overflow after check()
        // Refuse truncated data before allocating.
        let needed: Int
        switch h.kind {
        case 4: needed = h.height * ((h.width + 7) / 8)
        case 5, 6: needed = samples * (h.maxval > 255 ? 2 : 1)
        case 1: needed = samples
        default: needed = 2 * samples - 1
        }
        guard available >= needed else {
            throw TransFaceError.format("PNM: truncated: the \(h.width)x\(h.height) P\(h.kind) raster needs at least \(needed) bytes, \(available) remain")
        }
        let out = try destination(h.info)
        let maxval = h.maxval
        @inline(__always) func scale(_ v: Int) -> UInt8 {
            maxval == 255 ? UInt8(truncatingIfNeeded: min(v, 255)) : UInt8((min(v, maxval) * 255 + maxval / 2) / maxval)
        }
        let expand = h.channels == 1
        @inline(__always) func put(_ index: Int, _ value: UInt8) {
            if expand {
                out[3 * index] = value; out[3 * index + 1] = value; out[3 * index + 2] = value
            } else {
                out[index] = value
            }
        }
        var i = h.dataOffset
        switch h.kind {
        case 4:
            let rowBytes = (h.width + 7) / 8
            for y in 0..<h.height {
                for x in 0..<h.width {
                    let bit = (b[i + y * rowBytes + x / 8] >> (7 - UInt8(x % 8))) & 1
                    put(y * h.width + x, bit == 1 ? 0 : 255)
                }
            }
        case 5, 6:
            if maxval > 255 {
                for s in 0..<samples { put(s, scale(Int(b[i + 2 * s]) << 8 | Int(b[i + 2 * s + 1]))) }
            } else {
                for s in 0..<samples { put(s, scale(Int(b[i + s]))) }
            }
        case 1:
            for s in 0..<samples {
                skipSpace(b, &i)
                guard i < b.count else { throw TransFaceError.format("PNM: truncated: P1 raster ends at sample \(s) of \(samples)") }
                let c = b[i]
                guard c == UInt8(ascii: "0") || c == UInt8(ascii: "1") else {
                    throw TransFaceError.format("PNM: bad P1 sample 0x\(String(c, radix: 16)) at byte \(i)")
                }
                put(s, c == UInt8(ascii: "1") ? 0 : 255)
                i += 1
            }
        default:
            for s in 0..<samples {
                skipSpace(b, &i)
                guard i < b.count else {
                    throw TransFaceError.format("PNM: truncated: P\(h.kind) raster ends at sample \(s) of \(samples)")
                }
                put(s, scale(try number(b, &i, "sample \(s)", limit: 65_535)))
            }
        }
        return h.info
    }

    /// Binary PGM (1 channel) or PPM (3 channels), maxval 255.
    static func encode(_ pixels: UnsafePointer<UInt8>, width: Int, height: Int, channels: Int) throws -> [UInt8] {
        try require(width >= 1 && height >= 1, "PNM: cannot encode a \(width)x\(height) image")
        try require(channels == 1 || channels == 3, "PNM: cannot encode \(channels) channels (1 or 3)")
        let count = try checkedProduct([width, height, channels], what: "PNM image")
        var bytes = Array("P\(channels == 1 ? 5 : 6)\n\(width) \(height)\n255\n".utf8)
        bytes.append(contentsOf: UnsafeBufferPointer(start: pixels, count: count))
        return bytes
    }
}
