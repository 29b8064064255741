import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// The snapshot beside a gallery log, `<path>.snap`: the in-memory state after the log's first
/// `logBytes` bytes, read back in a few large reads instead of replaying and CRC-checking every
/// record. The log stays the source of truth: a snapshot is used only when its own checks pass
/// and it still matches the log (the log's header bytes, and a CRC-32 of the log's last 4 KiB
/// before `logBytes`); records after `logBytes` are replayed as usual. Anything else — missing,
/// stale (the log was compacted or cut), damaged, another version — and the log is replayed
/// whole. Records the snapshot covers are not re-read, so damage to them goes unnoticed until
/// the snapshot is dropped (compaction rewrites them from memory). Layout (little-endian):
///
///     0   8  magic "TFGSNAP1"
///     8   4  version (1)
///     12  4  H: bytes of the log header copied below
///     16  8  logBytes
///     24  4  CRC-32 of the log's bytes [max(H, logBytes − 4096), logBytes)
///     28  4  storage code, then 3 zero bytes
///     32  8  rows R     40  8  identity slots S     48  8  identity table bytes T
///     56  8  next entry id                          64  8  rows in the log (live or removed)
///     72  8  checksum64 of the slab   80  8  of ids and row identities   88  8  of the table
///     96  4  CRC-32 of bytes [0, 96)
///     100 H  the log's header
///     then R stored rows, R × u64 entry id, R × i32 identity slot, and the identity table:
///     S × (u8 present; if 1: u64 count, u16 + label, u32 M, M × (u16 + key, u32 + value)).
enum GallerySnapshot {
    static let magic: [UInt8] = Array("TFGSNAP1".utf8)
    static let version: UInt32 = 1
    static let fixedSize = 100
    static let matchedLogBytes: UInt64 = 4096

    static func path(of galleryPath: String) -> String { galleryPath + ".snap" }

    /// CRC-32 of the log's bytes the snapshot must match, ending at `logBytes`.
    static func logCRC(_ log: ReadableFile, headerSize: Int, logBytes: UInt64) throws -> UInt32 {
        let start = max(UInt64(headerSize), logBytes >= matchedLogBytes ? logBytes - matchedLogBytes : 0)
        return try log.readBytes(at: start, count: Int(logBytes - start)).withUnsafeBytes { crc32($0) }
    }

    /// Writes `store` as the state after `logBytes` bytes of the log at `logPath` (atomically:
    /// a temporary file renamed into place).
    static func write(_ store: GalleryStore, logPath: String, logBytes: UInt64) throws {
        let log = try ReadableFile(path: logPath)
        let headerSize = try log.readBytes(at: 0, count: GalleryHeader.sizeFieldEnd).withUnsafeBytes { try GalleryHeader.size($0, what: "gallery '\(logPath)'") }
        let header = try log.readBytes(at: 0, count: headerSize)
        var table = ByteWriter()
        for slot in store.identities {
            guard let slot else { table.u8(0); continue }
            table.u8(1); table.u64(UInt64(slot.count))
            GalleryRecord.putString(&table, slot.label, lengthBytes: 2)
            table.u32(UInt32(slot.metadata.count))
            for key in slot.metadata.keys.sorted() {
                GalleryRecord.putString(&table, key, lengthBytes: 2)
                GalleryRecord.putString(&table, slot.metadata[key]!, lengthBytes: 4)
            }
        }
        let slab = UnsafeRawBufferPointer(start: store.base, count: store.rows * store.rowBytes)
        let rowSums = store.ids.withUnsafeBytes { a in store.rowIdentity.withUnsafeBytes { b in checksum64(a) ^ (checksum64(b) &* 31) } }
        var w = ByteWriter()
        w.raw(magic); w.u32(version); w.u32(UInt32(headerSize)); w.u64(logBytes)
        w.u32(try logCRC(log, headerSize: headerSize, logBytes: logBytes))
        w.u8(store.storage.rawValue); w.u8(0); w.u16(0)
        w.u64(UInt64(store.rows)); w.u64(UInt64(store.identities.count)); w.u64(UInt64(table.bytes.count))
        w.u64(store.nextID); w.u64(UInt64(store.fileRows))
        w.u64(checksum64(slab)); w.u64(rowSums); w.u64(table.bytes.withUnsafeBytes { checksum64($0) })
        w.u32(w.bytes.withUnsafeBytes { crc32($0) })
        w.raw(header)
        let out = try AtomicFileWriter(path: path(of: logPath))
        try out.write(w.bytes)
        try out.write(slab)
        try store.ids.withUnsafeBytes { try out.write($0) }
        try store.rowIdentity.withUnsafeBytes { try out.write($0) }
        try out.write(table.bytes)
        try out.commit()
    }

    /// The store saved beside `log` and the log bytes it covers, if the snapshot is there, intact
    /// and matches the log (`header`: the log's decoded header, `headerBytes` its bytes); nil
    /// otherwise, with `why` saying what was wrong.
    static func load(log: ReadableFile, header: GalleryHeader, headerBytes: UnsafeRawBufferPointer,
                     why: inout String?) -> (store: GalleryStore, logBytes: UInt64)? {
        let snapPath = path(of: log.path)
        guard access(snapPath, F_OK) == 0 else { return nil }
        do {
            return try load(try ReadableFile(path: snapPath), log: log, header: header, headerBytes: headerBytes)
        } catch {
            why = "\(error)"
            return nil
        }
    }

    private static func load(_ file: ReadableFile, log: ReadableFile, header: GalleryHeader,
                             headerBytes: UnsafeRawBufferPointer) throws -> (store: GalleryStore, logBytes: UInt64) {
        let what = "gallery snapshot '\(file.path)'"
        guard file.size >= UInt64(fixedSize) else { throw GalleryErrors.damaged("\(what) is truncated") }
        let fixed = try file.readBytes(at: 0, count: fixedSize)
        return try fixed.withUnsafeBytes { f in
            guard Array(f[0..<8]) == magic, loadU32(f, 8) == version, crc32(UnsafeRawBufferPointer(rebasing: f[0..<96])) == loadU32(f, 96) else {
                throw GalleryErrors.damaged("\(what): not a version-\(version) snapshot, or its header is damaged")
            }
            var r = ByteReader(UnsafeRawBufferPointer(rebasing: f[12..<96]), what: what)
            let headerSize = Int(try r.u32()), logBytes = try r.u64(), logCRC = try r.u32()
            let storage = try r.u8(); _ = try r.take(3)
            let rows = try r.u64(), slots = try r.u64(), tableBytes = try r.u64(), nextID = try r.u64(), fileRows = try r.u64()
            let slabSum = try r.u64(), rowSum = try r.u64(), tableSum = try r.u64()
            let dim = header.fingerprint.embeddingSize, rowBytes = header.storage.rowBytes(dim: dim)
            guard logBytes <= log.size else {
                throw GalleryErrors.damaged("\(what) is stale: it covers \(logBytes) bytes of the log, which has \(log.size)")
            }
            guard headerSize == headerBytes.count, storage == header.storage.rawValue, UInt64(headerSize) <= logBytes,
                  rows <= UInt64(Int32.max), slots <= tableBytes, fileRows >= rows, fileRows <= UInt64(Int.max / 2), tableBytes <= UInt64(Int32.max),
                  file.size == UInt64(fixedSize + headerSize) + rows * UInt64(rowBytes + 12) + tableBytes else {
                throw GalleryErrors.damaged("\(what): its sizes do not fit this log or this file")
            }
            guard try file.readBytes(at: UInt64(fixedSize), count: headerSize) == Array(headerBytes),
                  try GallerySnapshot.logCRC(log, headerSize: headerSize, logBytes: logBytes) == logCRC else {
                throw GalleryErrors.damaged("\(what) is stale: the log was rewritten or cut since it was written")
            }
            let n = Int(rows)
            let capacity = max(n, 64)
            let slab = try GalleryStore.allocate(rows: capacity, rowBytes: rowBytes)
            var offset = UInt64(fixedSize + headerSize)
            let slabBytes = UnsafeMutableRawBufferPointer(start: slab.base, count: n * rowBytes)
            try file.read(into: slabBytes, at: offset)
            offset += UInt64(n * rowBytes)
            var ids = [UInt64](repeating: 0, count: n), rowIdentity = [Int32](repeating: 0, count: n)
            try ids.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            offset += UInt64(8 * n)
            try rowIdentity.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            offset += UInt64(4 * n)
            let table = try file.readBytes(at: offset, count: Int(tableBytes))
            let sums = ids.withUnsafeBytes { a in rowIdentity.withUnsafeBytes { b in checksum64(a) ^ (checksum64(b) &* 31) } }
            guard checksum64(UnsafeRawBufferPointer(slabBytes)) == slabSum, sums == rowSum, table.withUnsafeBytes({ checksum64($0) }) == tableSum else {
                throw GalleryErrors.damaged("\(what) is damaged (checksum mismatch)")
            }
            for i in 0..<n { ids[i] = UInt64(littleEndian: ids[i]); rowIdentity[i] = Int32(littleEndian: rowIdentity[i]) }
            var identities = [GalleryStore.Identity?]()
            identities.reserveCapacity(Int(slots))
            try table.withUnsafeBytes { t in
                var tr = ByteReader(t, what: "\(what) identity table")
                for _ in 0..<slots {
                    guard try tr.u8() == 1 else { identities.append(nil); continue }
                    let count = try tr.u64()
                    let label = try tr.string(lengthBytes: 2, field: "label")
                    let m = Int(try tr.u32())
                    guard m <= tr.remaining / 6 else { throw GalleryErrors.damaged("\(what): \(m) metadata entries cannot fit") }
                    var metadata: [String: String] = [:]
                    for _ in 0..<m {
                        let key = try tr.string(lengthBytes: 2, field: "metadata key")
                        metadata[key] = try tr.string(lengthBytes: 4, field: "metadata value")
                    }
                    guard count <= rows else { throw GalleryErrors.damaged("\(what): identity '\(label)' counts \(count) rows") }
                    identities.append(GalleryStore.Identity(label: label, metadata: metadata, count: Int(count)))
                }
                guard tr.remaining == 0 else { throw GalleryErrors.damaged("\(what): stray bytes after the identity table") }
            }
            let store = try GalleryStore(dim: dim, storage: header.storage, nextID: nextID, fileRows: Int(fileRows), slab: slab, capacity: capacity,
                                         rows: n, ids: ids, rowIdentity: rowIdentity, identities: identities, what: what)
            return (store, logBytes)
        }
    }
}

/// `snapshot` with its CRCs and checksums recomputed for the gallery file `log`, where its
/// sizes allow: what the fuzz harness does so that mutations reach the snapshot's decoders and
/// consistency checks (the checks themselves are single compares, tested by GallerySnapshotTests).
public func resealGallerySnapshot(_ snapshot: [UInt8], log: [UInt8]) -> [UInt8] {
    var s = snapshot
    guard s.count >= GallerySnapshot.fixedSize, log.count >= 24 else { return s }
    func u64(_ b: [UInt8], _ i: Int) -> UInt64 { (0..<8).reversed().reduce(0) { $0 << 8 | UInt64(b[i + $1]) } }
    func put(_ i: Int, _ v: UInt64, _ n: Int) { for b in 0..<n { s[i + b] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(b))) } }
    let headerSize = Int(s.withUnsafeBytes { loadU32($0, 12) }), logBytes = u64(s, 16)
    if headerSize <= log.count, UInt64(headerSize) <= logBytes, logBytes <= UInt64(log.count) {
        let start = Int(max(UInt64(headerSize), logBytes >= GallerySnapshot.matchedLogBytes ? logBytes - GallerySnapshot.matchedLogBytes : 0))
        put(24, UInt64(log[start..<Int(logBytes)].withUnsafeBytes { crc32($0) }), 4)
    }
    let dim = Int(log.withUnsafeBytes { loadU32($0, 20) })
    if let storage = GalleryStorage(rawValue: s[28]), dim <= GalleryFingerprint.maxEmbeddingSize {
        let rows = u64(s, 32), table = u64(s, 48), rowBytes = UInt64(storage.rowBytes(dim: dim))
        let slabStart = UInt64(GallerySnapshot.fixedSize + headerSize)
        if rows < 1 << 32, table < 1 << 32, slabStart + rows * (rowBytes + 12) + table <= UInt64(s.count) {
            let a = Int(slabStart), b = a + Int(rows * rowBytes), c = b + Int(8 * rows), d = c + Int(4 * rows), e = d + Int(table)
            put(72, s[a..<b].withUnsafeBytes { checksum64($0) }, 8)
            put(80, s[b..<c].withUnsafeBytes { x in s[c..<d].withUnsafeBytes { y in checksum64(x) ^ (checksum64(y) &* 31) } }, 8)
            put(88, s[d..<e].withUnsafeBytes { checksum64($0) }, 8)
        }
    }
    put(96, UInt64(s[0..<96].withUnsafeBytes { crc32($0) }), 4)
    return s
}
