import TFCore

/// One record of the gallery log. Layout (little-endian), 20-byte frame then the payload:
///
///     0   4  magic "TFGR"
///     4   4  type: 1 enrol, 2 remove a label, 3 remove entry ids
///     8   4  payload length P (at most `maxPayload`)
///     12  4  CRC-32 of the payload
///     16  4  CRC-32 of bytes [0, 16) of the frame
///     20  P  payload
///
/// Payloads:
///
///     enrol:        u32 n, u16 L + label, u32 M + M × (u16 + key, u32 + value),
///                   n × u64 entry ids, n stored rows (float32, float16 or int8 rows as the header says: `encodeRows`,
///                   L2-normalised)
///     remove label: u16 L + label
///     remove ids:   u32 n, n × u64 entry ids
enum GalleryRecord {
    case enrol(label: String, metadata: [String: String], ids: [UInt64], vectors: UnsafeRawBufferPointer)
    case removeLabel(String)
    case removeIDs([UInt64])

    static let magic: [UInt8] = Array("TFGR".utf8)
    static let frameSize = 20
    /// Largest payload: one enrolment of up to 256 MiB (about 128 K float32 embeddings of 512).
    static let maxPayload = 256 << 20
    static let maxLabelBytes = 1024

    enum Kind: UInt32 { case enrol = 1, removeLabel = 2, removeIDs = 3 }

    var kind: Kind {
        switch self {
        case .enrol: return .enrol
        case .removeLabel: return .removeLabel
        case .removeIDs: return .removeIDs
        }
    }

    /// Frame and payload, ready to append.
    var encoded: [UInt8] {
        var p = ByteWriter()
        switch self {
        case let .enrol(label, metadata, ids, vectors):
            p.u32(UInt32(ids.count))
            GalleryRecord.putString(&p, label, lengthBytes: 2)
            p.u32(UInt32(metadata.count))
            for key in metadata.keys.sorted() {
                GalleryRecord.putString(&p, key, lengthBytes: 2)
                GalleryRecord.putString(&p, metadata[key]!, lengthBytes: 4)
            }
            for id in ids { p.u64(id) }
            p.raw(vectors)
        case let .removeLabel(label):
            GalleryRecord.putString(&p, label, lengthBytes: 2)
        case let .removeIDs(ids):
            p.u32(UInt32(ids.count))
            for id in ids { p.u64(id) }
        }
        var f = ByteWriter()
        f.raw(GalleryRecord.magic)
        f.u32(kind.rawValue)
        f.u32(UInt32(p.bytes.count))
        f.u32(p.bytes.withUnsafeBytes { crc32($0) })
        f.u32(f.bytes.withUnsafeBytes { crc32($0) })
        f.raw(p.bytes)
        return f.bytes
    }

    static func putString(_ w: inout ByteWriter, _ s: String, lengthBytes: Int) {
        let b = Array(s.utf8)
        if lengthBytes == 2 { w.u16(UInt16(b.count)) } else { w.u32(UInt32(b.count)) }
        w.raw(b)
    }

    /// Decodes a payload whose CRC matched. `vectors` of an enrol point into `payload`.
    static func decode(kind: Kind, payload: UnsafeRawBufferPointer, rowBytes: Int, what: String) throws -> GalleryRecord {
        var r = ByteReader(payload, what: what)
        let record: GalleryRecord
        switch kind {
        case .enrol:
            let n = Int(try r.u32())
            let label = try r.string(lengthBytes: 2, field: "label")
            let pairs = Int(try r.u32())
            var metadata: [String: String] = [:]
            guard pairs <= r.remaining / 6 else { throw GalleryErrors.damaged("\(what): metadata count \(pairs) is impossible") }
            for _ in 0..<pairs {  // each pair takes at least 6 bytes
                let key = try r.string(lengthBytes: 2, field: "metadata key")
                metadata[key] = try r.string(lengthBytes: 4, field: "metadata value")
            }
            guard n >= 1, n <= r.remaining / 8 else { throw GalleryErrors.damaged("\(what): enrols \(n) entries, payload too short") }
            let idBytes = try r.take(8 * n)
            let ids = (0..<n).map { idBytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian }
            guard r.remaining == n * rowBytes else {
                throw GalleryErrors.damaged("\(what): \(r.remaining) bytes of embeddings for \(n) entries of \(rowBytes) bytes")
            }
            record = .enrol(label: label, metadata: metadata, ids: ids, vectors: try r.take(n * rowBytes))
            try checkLabel(label, what: what)
        case .removeLabel:
            let label = try r.string(lengthBytes: 2, field: "label")
            try checkLabel(label, what: what)
            record = .removeLabel(label)
        case .removeIDs:
            let n = Int(try r.u32())
            guard n >= 1, n == r.remaining / 8 else { throw GalleryErrors.damaged("\(what): removes \(n) ids, payload size disagrees") }
            let idBytes = try r.take(8 * n)
            record = .removeIDs((0..<n).map { idBytes.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self).littleEndian })
        }
        guard r.remaining == 0 else { throw GalleryErrors.damaged("\(what): \(r.remaining) stray bytes after the record") }
        return record
    }

    static func checkLabel(_ label: String, what: String) throws {
        guard !label.isEmpty, label.utf8.count <= maxLabelBytes else {
            throw GalleryErrors.damaged("\(what): label of \(label.utf8.count) bytes (must be 1...\(maxLabelBytes))")
        }
    }
}

/// The frame of a record, checked on its own (its CRC covers magic, type, length, payload CRC).
struct RecordFrame {
    let kind: GalleryRecord.Kind
    let payloadLength: Int
    let payloadCRC: UInt32

    /// nil when these 20 bytes are not an intact frame.
    init?(_ b: UnsafeRawBufferPointer) {
        guard b.count >= GalleryRecord.frameSize,
              b[0] == GalleryRecord.magic[0], b[1] == GalleryRecord.magic[1], b[2] == GalleryRecord.magic[2], b[3] == GalleryRecord.magic[3],
              crc32(UnsafeRawBufferPointer(rebasing: b[0..<16])) == loadU32(b, 16),
              let kind = GalleryRecord.Kind(rawValue: loadU32(b, 4)) else { return nil }
        let length = Int(loadU32(b, 8))
        guard length <= GalleryRecord.maxPayload else { return nil }
        self.kind = kind
        self.payloadLength = length
        self.payloadCRC = loadU32(b, 12)
    }
}
