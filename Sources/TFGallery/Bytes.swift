/// Little-endian encoding into a growing byte array (the gallery file's integers).
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt16(i)))) } }
    mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) } }
    mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    mutating func raw(_ b: UnsafeRawBufferPointer) { bytes.append(contentsOf: b) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
}

/// Bounds-checked little-endian decoding of a byte range; every read past the end throws
/// `format` naming `what`.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    var position = 0
    let what: String

    init(_ base: UnsafeRawBufferPointer, what: String) {
        self.base = base
        self.what = what
    }

    var remaining: Int { base.count - position }

    mutating func take(_ count: Int) throws -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else {
            throw GalleryErrors.damaged("\(what) ends early: \(count) bytes needed at byte \(position), \(remaining) left")
        }
        defer { position += count }
        return UnsafeRawBufferPointer(rebasing: base[position..<(position + count)])
    }

    mutating func u16() throws -> UInt16 { UInt16(try uint(2)) }
    mutating func u32() throws -> UInt32 { UInt32(try uint(4)) }
    mutating func u64() throws -> UInt64 { try uint(8) }
    mutating func u8() throws -> UInt8 { UInt8(try uint(1)) }

    private mutating func uint(_ n: Int) throws -> UInt64 {
        let b = try take(n)
        var v: UInt64 = 0
        for i in (0..<n).reversed() { v = v << 8 | UInt64(b[i]) }
        return v
    }

    /// A length-prefixed UTF-8 string (u16 length for labels and keys, u32 for values).
    mutating func string(lengthBytes: Int, field: String) throws -> String {
        let n = lengthBytes == 2 ? Int(try u16()) : Int(try u32())
        let b = try take(n)
        guard let s = String(validating: b, as: UTF8.self) else {
            throw GalleryErrors.damaged("\(what): \(field) is not valid UTF-8")
        }
        return s
    }
}

/// Reads a little-endian UInt32 at `offset` of a raw buffer (the caller checked the bounds).
@inline(__always)
func loadU32(_ b: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(b[offset]) | UInt32(b[offset + 1]) << 8 | UInt32(b[offset + 2]) << 16 | UInt32(b[offset + 3]) << 24
}
