import TFCore

extension Gallery {
    /// Exact 1:N search: for each of the `queries` (m × dim floats, m ≥ 1, L2-normalised here),
    /// the `k` identities with the highest cosine similarity, each scored by its closest
    /// embedding, best first (fewer if the gallery has fewer identities). `passes` says whether
    /// a score reaches `threshold`. `fingerprint`, when given, must be the gallery's.
    public func search(queries: [Float], k: Int, threshold: Float, fingerprint given: GalleryFingerprint? = nil) throws -> [[GalleryMatch]] {
        try queries.withUnsafeBufferPointer { try search(queries: $0, k: k, threshold: threshold, fingerprint: given) }
    }

    /// `search` over a buffer (for the C ABI).
    public func search(queries: UnsafeBufferPointer<Float>, k: Int, threshold: Float,
                       fingerprint given: GalleryFingerprint? = nil) throws -> [[GalleryMatch]] {
        let dim = fingerprint.embeddingSize
        try require(!queries.isEmpty && queries.count % dim == 0,
                    "search: \(queries.count) floats are not a whole number (≥ 1) of queries of \(dim)")
        try require(k >= 1 && k <= 1 << 16, "search: k = \(k) is outside 1...65536")
        try require(!threshold.isNaN, "search: the threshold is NaN")
        let m = queries.count / dim
        var unit = [Float](repeating: 0, count: queries.count)
        try unit.withUnsafeMutableBufferPointer { try normalizeRows(queries.baseAddress!, rows: m, dim: dim, into: $0.baseAddress!, what: "query") }
        return try lock.reading {
            try checkOpen()
            if let given { try Gallery.check(given, against: fingerprint, path: path, doing: "search") }
            let heaps = try unit.withUnsafeBufferPointer { u in
                guard let graph else { return topIdentities(queries: u.baseAddress!, m: m, k: k) }
                return try (0..<m).map { try graphTopIdentities(graph, query: u.baseAddress! + $0 * dim, k: k) }
            }
            return heaps.map { heap in
                heap.sorted().map { hit in
                    GalleryMatch(label: store.identities[Int(hit.identity)]!.label, score: hit.score,
                                 passes: hit.score >= threshold, entryID: store.ids[hit.row])
                }
            }
        }
    }

    /// One heap per query over all rows, the rows split over the search pool when it is free.
    private func topIdentities(queries: UnsafePointer<Float>, m: Int, k: Int) -> [TopIdentities] {
        let rows = store.rows
        var parts = [[TopIdentities]](repeating: [], count: searchPool?.pool.threadCount ?? 1)
        let scanPart = { (part: Int, range: Range<Int>) in parts[part] = self.scan(queries: queries, m: m, k: k, rows: range) }
        let pooled = rows >= 8192 && searchPool?.tryUse { pool in
            let n = pool.threadCount
            pool.run { w in scanPart(w, WorkerPool.split(rows, parts: n, index: w)) }
        } == true
        if !pooled { return scan(queries: queries, m: m, k: k, rows: 0..<rows) }
        var merged = parts[0]
        for part in parts.dropFirst() { for q in 0..<m { merged[q].merge(part[q]) } }
        return merged
    }

    /// Heaps of `m` queries over `rows` (one thread): one query by the fused scan, a batch by tiles of sgemm.
    private func scan(queries: UnsafePointer<Float>, m: Int, k: Int, rows: Range<Int>) -> [TopIdentities] {
        var heaps = [TopIdentities](repeating: TopIdentities(k: k), count: m)
        if m == 1 {
            store.rowIdentity.withUnsafeBufferPointer { identity in
                scanFused(query: queries, dim: store.dim, slab: store.base, storage: storage, rowIdentity: identity.baseAddress!, rows: rows, heap: &heaps[0])
            }
            return heaps
        }
        let tileRows = scanTileRows(storage)
        let dim = store.dim
        var scores = [Float](repeating: 0, count: m * tileRows)
        var widened = [Float](repeating: 0, count: storage == .float32 ? 0 : tileRows * dim)
        store.rowIdentity.withUnsafeBufferPointer { identity in
            scores.withUnsafeMutableBufferPointer { s in
                widened.withUnsafeMutableBufferPointer { w in
                    heaps.withUnsafeMutableBufferPointer { h in
                        scanTiles(queries: queries, m: m, dim: dim, slab: store.base, storage: storage, rows: rows, tileRows: tileRows,
                                  scores: s.baseAddress!, widened: w.baseAddress) { start, count in
                            for q in 0..<m {
                                let row = s.baseAddress! + q * count
                                for j in 0..<count where row[j] > h[q].floor {
                                    h[q].offer(row[j], identity: identity[start + j], row: start + j)
                                }
                            }
                        }
                    }
                }
            }
        }
        return heaps
    }
}
