import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// The HNSW graph beside a gallery's log: `<path>.hnsw` (hnswlib's own format, written by the
/// shim to a temporary file, synced, renamed) and `<path>.hnsw.meta` (ours, written after it
/// with `AtomicFileWriter`): the log bytes it covers with the CRC-32 of their last 4 KB (the
/// snapshot's rule, `GallerySnapshot.logCRC`), the next entry id then, the graph file's size
/// and checksum, its M and dimension, sealed by a CRC-32. A graph is used only if the meta is
/// intact, its log bytes are a prefix of the log, and the graph file has that size and checksum;
/// the shim then checks its layout and every link. The log stays the source of truth: entries
/// enrolled or removed after the graph was written are added / marked deleted at open.
enum GalleryGraphFile {
    static let magic: [UInt8] = Array("TFGHNSW1".utf8)
    static let version: UInt32 = 1
    static let metaSize = 8 + 4 * 4 + 8 + 4 + 8 * 3 + 4

    static func path(of galleryPath: String) -> String { galleryPath + ".hnsw" }
    static func metaPath(of galleryPath: String) -> String { galleryPath + ".hnsw.meta" }

    /// A checksum of a whole file, read in 64 MB pieces (`checksum64` of each, folded).
    static func fileChecksum(_ file: ReadableFile) throws -> UInt64 {
        let piece = 64 << 20
        var buffer = [UInt8](repeating: 0, count: Int(min(UInt64(piece), file.size)))
        var h: UInt64 = 0xcbf2_9ce4_8422_2325, at: UInt64 = 0
        while at < file.size {
            let n = Int(min(UInt64(piece), file.size - at))
            try buffer.withUnsafeMutableBytes { b in
                let part = UnsafeMutableRawBufferPointer(rebasing: b[0..<n])
                try file.read(into: part, at: at)
                h = (h ^ checksum64(UnsafeRawBufferPointer(part))) &* 0x100_0000_01b3
            }
            at += UInt64(n)
        }
        return h ^ file.size
    }

    /// Writes `graph` as the state after `logBytes` bytes of the log at `logPath`.
    static func write(_ graph: HNSWGraph, logPath: String, logBytes: UInt64, nextID: UInt64) throws {
        let log = try ReadableFile(path: logPath)
        let headerSize = try log.readBytes(at: 0, count: GalleryHeader.sizeFieldEnd).withUnsafeBytes { try GalleryHeader.size($0, what: "gallery '\(logPath)'") }
        let target = path(of: logPath)
        let temporary = target + ".tmp-\(getpid())"
        defer { unlink(temporary) }
        try graph.save(path: temporary)
        let saved = try ReadableFile(path: temporary)
        let sum = try fileChecksum(saved)
        let fd = open(temporary, O_RDONLY | O_CLOEXEC)
        guard fd >= 0, fsync(fd) == 0 else {
            if fd >= 0 { close(fd) }
            throw TransFaceError.io("cannot sync '\(temporary)': \(String(cString: strerror(errno)))")
        }
        close(fd)
        guard rename(temporary, target) == 0 else { throw TransFaceError.io("cannot move the graph to '\(target)': \(String(cString: strerror(errno)))") }
        var w = ByteWriter()
        w.raw(magic); w.u32(version); w.u32(UInt32(graph.parameters.m)); w.u32(UInt32(graph.dim)); w.u32(UInt32(headerSize))
        w.u64(logBytes); w.u32(try GallerySnapshot.logCRC(log, headerSize: headerSize, logBytes: logBytes))
        w.u64(nextID); w.u64(saved.size); w.u64(sum)
        w.u32(w.bytes.withUnsafeBytes { crc32($0) })
        let out = try AtomicFileWriter(path: metaPath(of: logPath))  // also syncs the folder, so the rename above is durable too
        try out.write(w.bytes)
        try out.commit()
    }

    /// The graph beside `log` if it is there, intact and covers a prefix of the log (`nextID`:
    /// the gallery's now); nil otherwise, with `why` saying what was wrong (nil if there was none).
    static func load(log: ReadableFile, nextID: UInt64, dim: Int, parameters: HNSWParameters, why: inout String?) -> HNSWGraph? {
        guard access(metaPath(of: log.path), F_OK) == 0 || access(path(of: log.path), F_OK) == 0 else { return nil }
        do {
            return try load(log: log, nextID: nextID, dim: dim, parameters: parameters)
        } catch {
            why = "\(error)"
            return nil
        }
    }

    private static func load(log: ReadableFile, nextID: UInt64, dim: Int, parameters: HNSWParameters) throws -> HNSWGraph {
        let what = "graph '\(metaPath(of: log.path))'"
        let meta = try ReadableFile(path: metaPath(of: log.path))
        guard meta.size == UInt64(metaSize) else { throw GalleryErrors.damaged("\(what) has \(meta.size) bytes, not \(metaSize)") }
        let bytes = try meta.readBytes(at: 0, count: metaSize)
        return try bytes.withUnsafeBytes { b in
            guard crc32(UnsafeRawBufferPointer(rebasing: b[0..<(metaSize - 4)])) == loadU32(b, metaSize - 4) else { throw GalleryErrors.damaged("\(what): checksum mismatch") }
            var r = ByteReader(b, what: what)
            guard Array(try r.take(8)) == magic, try r.u32() == version else { throw GalleryErrors.damaged("\(what): not a graph meta file of version \(version)") }
            let m = Int(try r.u32()), storedDim = Int(try r.u32()), headerSize = Int(try r.u32())
            let logBytes = try r.u64(), logCRC = try r.u32(), savedNextID = try r.u64(), graphSize = try r.u64(), graphSum = try r.u64()
            guard m == parameters.m, storedDim == dim else { throw GalleryErrors.damaged("\(what): built with M \(m), dimension \(storedDim); the gallery asks M \(parameters.m), dimension \(dim)") }
            guard logBytes >= UInt64(headerSize), logBytes <= log.size, savedNextID <= nextID,
                  try GallerySnapshot.logCRC(log, headerSize: headerSize, logBytes: logBytes) == logCRC else {
                throw GalleryErrors.damaged("\(what) is stale: it covers a log this gallery's does not begin with")
            }
            let graphFile = try ReadableFile(path: path(of: log.path))
            guard graphFile.size == graphSize, try fileChecksum(graphFile) == graphSum else { throw GalleryErrors.damaged("graph '\(graphFile.path)' is damaged (size or checksum)") }
            return try HNSWGraph.load(path: graphFile.path, dim: dim, parameters: parameters)
        }
    }
}
