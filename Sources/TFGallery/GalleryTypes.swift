/// How a gallery is opened.
public struct GalleryOptions: Sendable {
    /// Precision of a new gallery's embeddings; an existing gallery keeps the one it was made with.
    public var storage: GalleryStorage = .float32
    /// Read-only: no writer lock is taken (any number of processes may read while one writes),
    /// a torn tail is ignored rather than cut off, and enrol/remove/compact are refused. The
    /// gallery is a snapshot of the file at open; reopen to see later changes.
    public var readOnly = false
    /// Compact (rewrite the live entries) after a removal once removed embeddings are more than
    /// this fraction of those in the file (and at least 64); 1 or more never compacts automatically.
    public var compactionFraction = 0.5
    /// Threads one search uses (the calling one included); a search that finds them busy with
    /// another search runs on its calling thread alone.
    public var searchThreads = 1
    /// Log bytes not covered by the snapshot beside it (`GallerySnapshot`) after which `close`
    /// and `compact` write a new one (0: always; `UInt64.max`: never).
    public var snapshotBytes: UInt64 = 16 << 20
    /// How searches find rows: exact (default) or an HNSW graph (`GalleryIndex`); building the
    /// graph at open uses `searchThreads` threads.
    public var index: GalleryIndex = .exact

    public init(storage: GalleryStorage = .float32, readOnly: Bool = false, compactionFraction: Double = 0.5, searchThreads: Int = 1,
                snapshotBytes: UInt64 = 16 << 20, index: GalleryIndex = .exact) {
        self.index = index
        self.storage = storage
        self.readOnly = readOnly
        self.compactionFraction = compactionFraction
        self.searchThreads = searchThreads
        self.snapshotBytes = snapshotBytes
    }
}

/// One enrolled identity.
public struct GalleryIdentity: Equatable, Sendable {
    public let label: String
    /// Embeddings enrolled under the label.
    public let count: Int
    public let metadata: [String: String]
}

/// One result of a search: an identity with its best score over its embeddings.
public struct GalleryMatch: Equatable, Sendable {
    public let label: String
    /// Cosine similarity of the query and the identity's closest embedding, in [-1, 1].
    public let score: Float
    /// `score >= threshold` of the search.
    public let passes: Bool
    /// Entry id of that closest embedding.
    public let entryID: UInt64
}
