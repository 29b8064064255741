import TFCore
#if canImport(Glibc)
import Glibc
#endif

extension Gallery {
    /// Rewrites the file with only the live entries (one enrol record per identity, or a few for
    /// a large one): written to a temporary file beside it, synced, renamed into place and the
    /// folder synced, so a crash leaves either the old file or the new one. Entry ids are kept.
    /// Searches wait while it runs (it holds the write lock: ~1 s per GB on a fast disk). Then
    /// writes the snapshot (`GallerySnapshot`) if the log is `options.snapshotBytes` or more.
    public func compact() throws {
        try lock.writing { try compactLocked() }
    }

    func compactLocked() throws {
        let old = try checkWritable(nil, doing: "compact")
        let out = try AtomicFileWriter(path: path)
        try out.write(GalleryHeader(fingerprint: fingerprint, storage: storage, nextID: store.nextID).encoded)
        var rowsOf = [[Int]](repeating: [], count: store.identities.count)
        for r in 0..<store.rows { rowsOf[Int(store.rowIdentity[r])].append(r) }
        let perRecord = max(1, (GalleryRecord.maxPayload - 2 * GalleryLimits.maxMetadataBytes) / (store.rowBytes + 8))
        var gathered = [UInt8](repeating: 0, count: min(perRecord, max(store.rows, 1)) * store.rowBytes)
        for (identity, rows) in rowsOf.enumerated() where !rows.isEmpty {
            let who = store.identities[identity]!
            for (chunkIndex, start) in stride(from: 0, to: rows.count, by: perRecord).enumerated() {
                let chunk = rows[start..<min(rows.count, start + perRecord)]
                let record: [UInt8] = gathered.withUnsafeMutableBytes { g in
                    for (i, r) in chunk.enumerated() { (g.baseAddress! + i * store.rowBytes).copyMemory(from: store.row(r), byteCount: store.rowBytes) }
                    return GalleryRecord.enrol(label: who.label, metadata: chunkIndex == 0 ? who.metadata : [:], ids: chunk.map { store.ids[$0] },
                                               vectors: UnsafeRawBufferPointer(rebasing: g[0..<(chunk.count * store.rowBytes)])).encoded
                }
                try out.write(record)
            }
        }
        try out.commit()
        old.close()
        writer = nil  // refuses writes if reopening fails below
        writer = try GalleryLogWriter(path: path, end: out.bytesWritten, fileSize: out.bytesWritten)
        store.fileRows = store.rows
        snapshotEnd = 0  // the old snapshot no longer matches the log
        unlink(GallerySnapshot.path(of: path))
        try? snapshotIfGrownLocked()  // the log has everything; a missing snapshot only makes opening slower
        try? compactGraphLocked()
    }
}
