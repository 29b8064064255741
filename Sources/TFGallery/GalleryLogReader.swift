import TFCore

/// A sliding window over a file, so that records are parsed from a few large reads.
final class FileWindow {
    let file: ReadableFile
    private var buffer: [UInt8] = []
    private var start: UInt64 = 0
    private var filled = 0
    static let chunk = 8 << 20

    init(_ file: ReadableFile) { self.file = file }

    /// `count` bytes at `offset` (the caller checked they are inside the file); valid until the next call.
    func bytes(at offset: UInt64, count: Int) throws -> UnsafeRawBufferPointer {
        if offset < start || offset + UInt64(count) > start + UInt64(filled) {
            let want = Int(min(UInt64(max(count, FileWindow.chunk)), file.size - offset))
            if buffer.count < want { buffer = [UInt8](repeating: 0, count: want) }
            try buffer.withUnsafeMutableBytes { try file.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<want]), at: offset) }
            start = offset
            filled = want
        }
        let from = Int(offset - start)
        return buffer.withUnsafeBytes { UnsafeRawBufferPointer(rebasing: $0[from..<(from + count)]) }
    }
}

/// Where a replayed log ended: records up to `validEnd` were applied; the `tornBytes` after
/// them are an unfinished last record (a crash during an append that never returned OK).
public struct GalleryLogEnd: Equatable, Sendable {
    public let validEnd: UInt64
    public let tornBytes: UInt64
}

/// Reads a gallery file: the header, then every record in order. The parser of outside input
/// (fuzzed by `TransFaceFuzzHarness`'s `gallery` harness): arbitrary bytes either replay or
/// throw a `TransFaceError`.
///
/// Damage rules. Records are appended and synced one at a time, so a crash can only leave the
/// last record unfinished: either the file ends inside it (the size never grew over all of
/// it), or the size grew but some of its blocks never reached the disk, and those read as
/// zeros (a file system returns zeros for blocks it allocated but never wrote). So after the
/// last intact record, the rest of the file is a torn tail (ignored, and truncated by a writer)
/// when it is
///   - shorter than a frame, or
///   - an intact frame whose payload runs past the end of the file, or
///   - no longer than one record, with a bad frame or a bad payload CRC, and with an unwritten
///     block: a 512-byte block of the file (at a multiple of 512) whose part in the tail is
///     all zeros, and without an intact frame after its start.
/// Anything else is damage, refused: a bad CRC with records after it, an intact record that
/// contradicts the ones before it, and a bad last record with no zero block, which a torn
/// write cannot leave but a flipped bit can. Earlier entries are never dropped. (The rule can
/// take damage for a torn write only if the damaged last record really has a zero block — a
/// removal's ids end in zero bytes, so its last block can be one; then that record is dropped.)
enum GalleryLogReader {
    /// `check` sees the header (and its bytes) and returns where to start replaying the records
    /// (nil: right after the header; a snapshot's end otherwise).
    static func replay(file: ReadableFile, header check: (GalleryHeader, UnsafeRawBufferPointer) throws -> UInt64?,
                       record apply: (GalleryRecord, UInt64) throws -> Void) throws -> GalleryLogEnd {
        let what = "gallery '\(file.path)'"
        let window = FileWindow(file)
        guard file.size >= UInt64(GalleryHeader.sizeFieldEnd) else {
            throw GalleryErrors.damaged("\(what) is not a gallery file (\(file.size) bytes, shorter than a header)")
        }
        let headerSize = try GalleryHeader.size(try window.bytes(at: 0, count: GalleryHeader.sizeFieldEnd), what: what)
        guard file.size >= UInt64(headerSize) else { throw GalleryErrors.damaged("\(what): header is truncated") }
        let headerBytes = Array(try window.bytes(at: 0, count: headerSize))
        let header = try headerBytes.withUnsafeBytes { try GalleryHeader(decoding: $0, what: what) }
        let start = try headerBytes.withUnsafeBytes { try check(header, $0) }
        let rowBytes = header.storage.rowBytes(dim: header.fingerprint.embeddingSize)
        var offset = start ?? UInt64(headerSize)
        while offset < file.size {
            let rest = file.size - offset
            guard rest >= UInt64(GalleryRecord.frameSize),
                  let frame = RecordFrame(try window.bytes(at: offset, count: GalleryRecord.frameSize)) else {
                return try tail(window, at: offset, what: what)
            }
            let end = offset + UInt64(GalleryRecord.frameSize + frame.payloadLength)
            if end > file.size { return GalleryLogEnd(validEnd: offset, tornBytes: rest) }
            let payload = try window.bytes(at: offset + UInt64(GalleryRecord.frameSize), count: frame.payloadLength)
            guard crc32(payload) == frame.payloadCRC else {
                if end == file.size { return try tail(window, at: offset, what: what) }
                throw GalleryErrors.damaged("\(what): the record at byte \(offset) is damaged (payload CRC mismatch) and \(file.size - end) bytes follow it; refusing the file")
            }
            let recordWhat = "\(what): record at byte \(offset)"
            try apply(try GalleryRecord.decode(kind: frame.kind, payload: payload, rowBytes: rowBytes, what: recordWhat), offset)
            offset = end
        }
        return GalleryLogEnd(validEnd: offset, tornBytes: 0)
    }

    /// The rest of the file from `offset` is not an intact record (a bad frame, or a bad payload
    /// ending at the end of the file): a torn tail or damage, by the rules above.
    private static func tail(_ window: FileWindow, at offset: UInt64, what: String) throws -> GalleryLogEnd {
        let rest = window.file.size - offset
        let torn = GalleryLogEnd(validEnd: offset, tornBytes: rest)
        if rest < UInt64(GalleryRecord.frameSize) { return torn }
        guard rest <= UInt64(GalleryRecord.frameSize + GalleryRecord.maxPayload) else {
            throw GalleryErrors.damaged("\(what): damaged record frame at byte \(offset), \(rest) bytes before the end of the file; refusing the file")
        }
        let b = try window.bytes(at: offset, count: Int(rest))
        let m = GalleryRecord.magic
        var i = 1
        while i + GalleryRecord.frameSize <= b.count {
            if b[i] == m[0] && b[i + 1] == m[1] && b[i + 2] == m[2] && b[i + 3] == m[3],
               RecordFrame(UnsafeRawBufferPointer(rebasing: b[i..<(i + GalleryRecord.frameSize)])) != nil {
                throw GalleryErrors.damaged("\(what): damaged record frame at byte \(offset) with an intact record after it at byte \(offset + UInt64(i)); refusing the file")
            }
            i += 1
        }
        guard hasUnwrittenBlock(b, at: offset) else {
            throw GalleryErrors.damaged("\(what): the last record, at byte \(offset), is damaged (a bad CRC, but no zero block that a torn write would leave); refusing the file")
        }
        return torn
    }

    static let blockSize: UInt64 = 512

    /// Whether some 512-byte block of the file has all of its bytes within `b` (the file's
    /// bytes from `offset` to its end) zero.
    static func hasUnwrittenBlock(_ b: UnsafeRawBufferPointer, at offset: UInt64) -> Bool {
        var start = 0
        while start < b.count {
            let blockEnd = Int(min(UInt64(b.count), (offset + UInt64(start)) / blockSize * blockSize + blockSize - offset))
            if UnsafeRawBufferPointer(rebasing: b[start..<blockEnd]).allSatisfy({ $0 == 0 }) { return true }
            start = blockEnd
        }
        return false
    }
}
