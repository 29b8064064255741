import TFCore

/// Which index a gallery searches with (`GalleryOptions.index`).
public enum GalleryIndex: Equatable, Sendable {
    /// Every row scored (`scanFused` / sgemm tiles): exact, the default.
    case exact
    /// An HNSW graph (hnswlib) proposes candidate rows, which are then scored exactly from the
    /// slab: scores are the exact cosines of the rows found, but a row the graph misses is not
    /// found (recall < 1, see Benchmarks/gallery/RESULTS.md). Kept beside the log in
    /// `<path>.hnsw` (+ `.hnsw.meta`), in step with enrol and remove.
    case hnsw(HNSWParameters)
}

/// HNSW graph parameters.
public struct HNSWParameters: Equatable, Sendable {
    /// Links per node (2M on the base layer), 2...256: more is better recall, more memory and build time.
    public var m: Int
    /// Beam width while inserting (≥ 1): more is a better graph and a slower build.
    public var efConstruction: Int
    /// Beam width of a search (≥ 1): the candidates re-scored per query (at least k).
    public var efSearch: Int
    /// Seed of the node levels drawn while building (a rebuilt graph with the same rows in the same order is the same).
    public var seed: UInt64

    public init(m: Int = 16, efConstruction: Int = 200, efSearch: Int = 64, seed: UInt64 = 100) {
        self.m = m
        self.efConstruction = efConstruction
        self.efSearch = efSearch
        self.seed = seed
    }

    func check() throws {
        try require(m >= 2 && m <= 256, "HNSW M = \(m) outside 2...256")
        try require(efConstruction >= 1 && efConstruction <= 1 << 16, "HNSW ef_construction = \(efConstruction) outside 1...65536")
        try require(efSearch >= 1 && efSearch <= 1 << 16, "HNSW ef_search = \(efSearch) outside 1...65536")
    }
}
