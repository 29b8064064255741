import TFCore

/// How embeddings are stored in the file and scanned in memory.
public enum GalleryStorage: UInt8, Sendable, CaseIterable {
    /// 4 bytes per value.
    case float32 = 0
    /// IEEE half precision, 2 bytes per value: half the file and memory, top-10 recall ≥ 0.99
    /// against float32 (GalleryTests measure it).
    case float16 = 1
    /// Symmetric int8 with one float32 scale per row (a row is the scale, then `dim` values
    /// round(x / step), step = max |x| / 127; `encodeRows`): a quarter of the file and memory.
    /// Top-10 recall against float32 (GallerySearchTests): ≥ 0.99 on clustered embeddings, but
    /// only ≥ 0.98 on random 512-d unit vectors, whose top 10 are ~1e-3 apart while int8 moves
    /// a score by ~3e-4. Needs file version 2.
    case int8 = 2

    /// Bytes of one stored row of `dim` values.
    func rowBytes(dim: Int) -> Int {
        switch self {
        case .float32: return 4 * dim
        case .float16: return 2 * dim
        case .int8: return dim + 4
        }
    }
}

/// The file header (little-endian), written once when a gallery is created or compacted:
///
///     0   8  magic "TFGALLRY"
///     8   4  version (2; version 1 files, without int8, are read too)
///     12  4  header size H = 46 + A (including the CRC)
///     16  1  storage: 0 float32, 1 float16, 2 int8 (version 2 only)
///     17  3  zero
///     20  4  embedding size (dim)
///     24  8  weights hash of the model
///     32  8  next entry id (ids below it may have been used)
///     40  2  architecture length A
///     42  A  architecture, UTF-8
///     42+A 4 CRC-32 of bytes [0, 42+A)
struct GalleryHeader: Equatable {
    static let magic: [UInt8] = Array("TFGALLRY".utf8)
    /// The version written; `readableVersions` are read.
    static let version: UInt32 = 2
    static let readableVersions: ClosedRange<UInt32> = 1...2
    static let fixedSize = 46

    var fingerprint: GalleryFingerprint
    var storage: GalleryStorage
    var nextID: UInt64

    init(fingerprint: GalleryFingerprint, storage: GalleryStorage, nextID: UInt64) {
        self.fingerprint = fingerprint
        self.storage = storage
        self.nextID = nextID
    }

    var encoded: [UInt8] {
        var w = ByteWriter()
        let arch = Array(fingerprint.architecture.utf8)
        w.raw(GalleryHeader.magic)
        w.u32(GalleryHeader.version)
        w.u32(UInt32(GalleryHeader.fixedSize + arch.count))
        w.u8(storage.rawValue); w.u8(0); w.u16(0)
        w.u32(UInt32(fingerprint.embeddingSize))
        w.u64(fingerprint.weightsHash)
        w.u64(nextID)
        w.u16(UInt16(arch.count))
        w.raw(arch)
        w.u32(w.bytes.withUnsafeBytes { crc32($0) })
        return w.bytes
    }

    /// Bytes needed before the header's size is known.
    static let sizeFieldEnd = 16

    /// Size of the header from its first 16 bytes (magic and version checked), `what` naming the file.
    static func size(_ prefix: UnsafeRawBufferPointer, what: String) throws -> Int {
        guard prefix.count >= sizeFieldEnd, Array(prefix[0..<8]) == magic else {
            throw GalleryErrors.damaged("\(what) is not a gallery file (no TFGALLRY magic)")
        }
        let version = loadU32(prefix, 8)
        guard readableVersions.contains(version) else {
            throw GalleryErrors.damaged("\(what) is a gallery of version \(version); this library reads versions \(readableVersions)")
        }
        let size = Int(loadU32(prefix, 12))
        guard size >= fixedSize, size <= fixedSize + GalleryFingerprint.maxArchitectureBytes else {
            throw GalleryErrors.damaged("\(what): header size \(size) is impossible")
        }
        return size
    }

    /// Decodes a whole header (`bytes.count` = its size).
    init(decoding bytes: UnsafeRawBufferPointer, what: String) throws {
        let size = try GalleryHeader.size(bytes, what: what)
        guard bytes.count == size else { throw GalleryErrors.damaged("\(what): header is truncated") }
        let stored = loadU32(bytes, size - 4)
        guard crc32(UnsafeRawBufferPointer(rebasing: bytes[0..<(size - 4)])) == stored else {
            throw GalleryErrors.damaged("\(what): header CRC mismatch (the header is damaged)")
        }
        var r = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[16..<(size - 4)]), what: "\(what) header")
        guard let storage = GalleryStorage(rawValue: try r.u8()), storage != .int8 || loadU32(bytes, 8) >= 2 else {
            throw GalleryErrors.damaged("\(what): unknown storage code \(bytes[16]) for version \(loadU32(bytes, 8))")
        }
        _ = try r.take(3)
        let dim = Int(try r.u32())
        let hash = try r.u64()
        let next = try r.u64()
        let arch = try r.string(lengthBytes: 2, field: "architecture")
        guard r.remaining == 0 else { throw GalleryErrors.damaged("\(what): header size does not match its architecture length") }
        do {
            fingerprint = try GalleryFingerprint(architecture: arch, embeddingSize: dim, weightsHash: hash)
        } catch let e as TransFaceError {
            throw GalleryErrors.damaged("\(what): \(e.message)")
        }
        self.storage = storage
        self.nextID = next
    }
}
