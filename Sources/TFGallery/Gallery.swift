import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// A persistent 1:N gallery of enrolled face embeddings of one model (see `GalleryRecord` and
/// `GalleryHeader` for the file format, `GalleryLogReader` for the damage rules).
///
/// - Embeddings are L2-normalised on enrolment and queries on search, so scores are cosine
///   similarities computed as dot products.
/// - Durability: `enrol` and `remove` return only after their record is written and synced
///   (`fdatasync`); an operation that returned survives kill -9 and power loss, and a crash
///   during one leaves at most a torn tail record, which the next open ignores (a writer cuts
///   it off). A damaged file is refused with a `format` error, never half-loaded.
/// - Fast open: `close` and `compact` leave a snapshot of the state beside the log
///   (`<path>.snap`, `GallerySnapshot`) once it grew by `GalleryOptions.snapshotBytes`; open
///   reads it and replays only the records after it, or the whole log if it is stale or damaged.
/// - Concurrency: within a process any number of threads may search at once while enrol,
///   remove, compact and close wait for them and run alone (a readers-writer lock). Across
///   processes one writer at a time (an advisory `flock` on `<path>.lock`; a second writer gets
///   an `io` error saying so), and any number of read-only openers.
/// - Index: exact by default; `GalleryOptions.index` `.hnsw` searches an HNSW graph kept beside
///   the log (`GalleryGraph`, `GalleryGraphFile`) and re-scores its candidates exactly.
/// - Model guard: the file stores the model's `GalleryFingerprint`; opening, enrolling or
///   searching with another fingerprint is refused naming both.
public final class Gallery: @unchecked Sendable {
    public let path: String
    public let fingerprint: GalleryFingerprint
    public let storage: GalleryStorage
    public let isReadOnly: Bool
    /// Bytes of an unfinished last record found at open (ignored; cut off unless read-only).
    public let discardedTailBytes: UInt64
    /// Log bytes the snapshot loaded at open (or written since) covers; 0 if none.
    public internal(set) var snapshotEnd: UInt64 = 0
    /// Why a snapshot beside the log was not used at open (stale, damaged), if there was one.
    public internal(set) var snapshotProblem: String?
    /// With `GalleryIndex.hnsw`: why the graph beside the log was not used at open (then it was
    /// rebuilt from the slab), or why it was dropped later; nil if none.
    public internal(set) var graphProblem: String?
    /// With `GalleryIndex.hnsw`: whether the graph was loaded from its file at open (not rebuilt).
    public internal(set) var graphLoaded = false
    var graph: HNSWGraph?
    var graphDirty = false

    let options: GalleryOptions
    let lock = ReadersWriterLock()
    let store: GalleryStore
    var writer: GalleryLogWriter?
    private var fileLock: GalleryLock?
    var closed = false
    let searchPool: SearchPool?
    private let listing = VersionedCache<[GalleryIdentity]>()

    private init(path: String, header: GalleryHeader, store: GalleryStore, end: GalleryLogEnd, options: GalleryOptions,
                 writer: GalleryLogWriter?, fileLock: GalleryLock?) throws {
        self.path = path
        self.fingerprint = header.fingerprint
        self.storage = header.storage
        self.isReadOnly = options.readOnly
        self.discardedTailBytes = end.tornBytes
        self.options = options
        self.store = store
        self.writer = writer
        self.fileLock = fileLock
        self.searchPool = options.searchThreads > 1 ? try SearchPool(threads: options.searchThreads) : nil
    }

    /// Opens the gallery at `path`, creating it (empty, with `fingerprint` and
    /// `options.storage`) if there is no file. `fingerprint` nil opens an existing gallery
    /// whatever its model (to inspect it); otherwise it must equal the stored one.
    public static func open(path: String, fingerprint: GalleryFingerprint?, options: GalleryOptions = GalleryOptions()) throws -> Gallery {
        try require(!path.isEmpty, "empty gallery path")
        try require(options.searchThreads >= 1 && options.searchThreads <= 256, "search threads \(options.searchThreads) outside 1...256")
        if case let .hnsw(parameters) = options.index { try parameters.check() }
        BLAS.useSingleThread()
        let fileLock = options.readOnly ? nil : try GalleryLock(galleryPath: path)
        if access(path, F_OK) != 0 {
            guard errno == ENOENT else { throw TransFaceError.io("cannot open gallery '\(path)': \(String(cString: strerror(errno)))") }
            guard !options.readOnly else { throw TransFaceError.notFound("gallery '\(path)' does not exist") }
            guard let fingerprint else { throw TransFaceError.invalidArgument("gallery '\(path)' does not exist; creating it needs the model's fingerprint") }
            let w = try AtomicFileWriter(path: path)
            try w.write(GalleryHeader(fingerprint: fingerprint, storage: options.storage, nextID: 0).encoded)
            try w.commit()
        }
        let file = try ReadableFile(path: path)
        var header: GalleryHeader?
        var store: GalleryStore?
        var snapshotEnd: UInt64 = 0
        var snapshotProblem: String?
        let end = try GalleryLogReader.replay(file: file, header: { h, headerBytes in
            if let fingerprint { try Gallery.check(fingerprint, against: h.fingerprint, path: path, doing: "open") }
            header = h
            if let (saved, logBytes) = GallerySnapshot.load(log: file, header: h, headerBytes: headerBytes, why: &snapshotProblem) {
                store = saved
                snapshotEnd = logBytes
                return logBytes
            }
            let rowBytes = h.storage.rowBytes(dim: h.fingerprint.embeddingSize)
            store = try GalleryStore(dim: h.fingerprint.embeddingSize, storage: h.storage, nextID: h.nextID,
                                     expectedRows: Int(min(file.size / UInt64(rowBytes), 1 << 26)))
            return nil
        }, record: { record, offset in
            let what = "gallery '\(path)': record at byte \(offset)"
            try store!.check(record, what: what)
            try store!.apply(record)
        })
        let writer = options.readOnly ? nil : try GalleryLogWriter(path: path, end: end.validEnd, fileSize: file.size)
        let g = try Gallery(path: path, header: header!, store: store!, end: end, options: options, writer: writer, fileLock: fileLock)
        g.snapshotEnd = snapshotEnd
        g.snapshotProblem = snapshotProblem
        if case let .hnsw(parameters) = options.index {
            do { try g.openGraph(parameters, log: file) } catch { g.close(); throw error }  // releases the writer lock
        }
        return g
    }

    /// Writes the snapshot (`GallerySnapshot`) when the log has grown by `options.snapshotBytes`
    /// since the one there (called by close and compaction, under the write lock).
    func snapshotIfGrownLocked() throws {
        guard let writer, writer.end > snapshotEnd, writer.end - snapshotEnd >= options.snapshotBytes else { return }
        try GallerySnapshot.write(store, logPath: path, logBytes: writer.end)
        snapshotEnd = writer.end
    }

    static func check(_ given: GalleryFingerprint, against stored: GalleryFingerprint, path: String, doing: String) throws {
        guard given != stored else { return }
        throw TransFaceError.invalidArgument(
            "cannot \(doing) gallery '\(path)' with another model: it holds embeddings of [\(stored)], the model given is [\(given)]")
    }

    /// Embeddings enrolled (all identities).
    public var count: Int { lock.reading { store.rows } }
    /// Identities enrolled.
    public var identityCount: Int { lock.reading { store.identityOfLabel.count } }
    /// Embeddings removed but still in the file (compaction drops them).
    public var removedInFile: Int { lock.reading { store.fileRows - store.rows } }

    /// Every identity with its embedding count and metadata, sorted by label: sorted once, then
    /// kept until a write changes the gallery (`GalleryStore.version`).
    public func list() throws -> [GalleryIdentity] {
        try lock.reading {
            try checkOpen()
            return listing.value(for: store.version) {
                store.identities.compactMap { $0 }.map { GalleryIdentity(label: $0.label, count: $0.count, metadata: $0.metadata) }
                    .sorted { $0.label < $1.label }
            }
        }
    }

    /// Entry ids of a label's embeddings (empty if it is not enrolled).
    public func entryIDs(of label: String) throws -> [UInt64] {
        try lock.reading { try checkOpen(); return store.ids(of: label) }
    }

    /// Waits for running operations, writes the snapshot if the log grew by `options.snapshotBytes`
    /// since the last one (a failure to write it is ignored: the log has everything), releases
    /// the writer lock and the memory. Later calls throw `misuse`.
    public func close() {
        lock.writing {
            if !closed { try? snapshotIfGrownLocked(); try? saveGraphLocked() }
            closed = true
            writer?.close()
            writer = nil
            graph = nil
            fileLock?.release()
            fileLock = nil
        }
    }

    func checkOpen() throws {
        if closed { throw GalleryErrors.misuse("gallery '\(path)' is closed") }
    }

    func checkWritable(_ given: GalleryFingerprint?, doing: String) throws -> GalleryLogWriter {
        try checkOpen()
        if let given { try Gallery.check(given, against: fingerprint, path: path, doing: doing) }
        guard let writer else { throw GalleryErrors.misuse("cannot \(doing) gallery '\(path)': it is open read-only") }
        return writer
    }
}
