import TFCore

/// The gallery's HNSW index (`GalleryIndex.hnsw`), kept in step with the store under its lock:
/// loaded or rebuilt at open, rows added on enrol, marked deleted on remove, written beside the
/// log (`GalleryGraphFile`) after a rebuild, on close and after compaction (which also rebuilds
/// it once removed nodes are as many as live ones). A read-only open without a usable graph file
/// builds the graph in memory (not written). If an update of the
/// graph fails (the log already has the change), the graph is dropped and searches are exact
/// until the next open rebuilds it (`graphProblem` says why).
extension Gallery {
    /// Loads the graph beside the log, brought up to date with the store, or builds it from the slab.
    func openGraph(_ parameters: HNSWParameters, log: ReadableFile) throws {
        var why: String?
        if let saved = GalleryGraphFile.load(log: log, nextID: store.nextID, dim: store.dim, parameters: parameters, why: &why) {
            let live = saved.liveLabels()
            try saved.markDeleted(live.filter { !store.contains(id: $0) })
            let known = Set(live)
            let missing = (0..<store.rows).filter { !known.contains(store.ids[$0]) }
            try addRows(missing, to: saved)
            graph = saved
            graphDirty = !missing.isEmpty || live.count != known.count || live.contains { !store.contains(id: $0) }
            graphLoaded = true
        } else {
            graphProblem = why
            let built = try HNSWGraph.create(dim: store.dim, parameters: parameters, seed: parameters.seed)
            try addRows(Array(0..<store.rows), to: built)
            graph = built
            graphDirty = true
            if !isReadOnly { try? saveGraphLocked() }
        }
    }

    /// Adds store rows to `graph` as float32 (the slab itself for a float32 gallery's whole slab).
    func addRows(_ rows: [Int], to graph: HNSWGraph) throws {
        guard !rows.isEmpty else { return }
        let threads = options.searchThreads
        if storage == .float32, rows.count == store.rows, rows.first == 0, rows.last == store.rows - 1 {
            try graph.add(store.base.assumingMemoryBound(to: Float.self), labels: store.ids, threads: threads)
            return
        }
        let piece = 16384
        var floats = [Float](repeating: 0, count: min(piece, rows.count) * store.dim)
        for start in stride(from: 0, to: rows.count, by: piece) {
            let part = rows[start..<min(rows.count, start + piece)]
            try floats.withUnsafeMutableBufferPointer { f in
                for (i, r) in part.enumerated() { decodeRows(store.row(r), rows: 1, dim: store.dim, storage: storage, into: f.baseAddress! + i * store.dim) }
                try graph.add(f.baseAddress!, labels: part.map { store.ids[$0] }, threads: threads)
            }
        }
    }

    /// Applies an enrolment of rows `rows` or a removal of entry ids to the graph (write lock held).
    func updateGraph(added rows: Range<Int> = 0..<0, removed ids: [UInt64] = []) {
        guard let graph else { return }
        do {
            try graph.markDeleted(ids)
            try addRows(Array(rows), to: graph)
            graphDirty = graphDirty || !ids.isEmpty || !rows.isEmpty
        } catch {
            self.graph = nil
            graphProblem = "the graph was dropped after a failed update (searches are exact until reopened): \(error)"
        }
    }

    /// After compaction: rebuilds the graph from the slab once removed nodes (kept as waypoints)
    /// are as many as live ones, then writes it (the rewritten log no longer matches its meta).
    func compactGraphLocked() throws {
        guard let old = graph else { return }
        if old.nodeCount >= 2 * store.rows {
            graph = nil
            let rebuilt = try HNSWGraph.create(dim: store.dim, parameters: old.parameters, seed: old.parameters.seed)
            try addRows(Array(0..<store.rows), to: rebuilt)
            graph = rebuilt
        }
        graphDirty = true
        try saveGraphLocked()
    }

    /// Writes the graph beside the log if it changed since it was read or written (write lock held).
    func saveGraphLocked() throws {
        guard let graph, graphDirty, let writer else { return }
        try GalleryGraphFile.write(graph, logPath: path, logBytes: writer.end, nextID: store.nextID)
        graphDirty = false
    }

    /// The heap of one unit query over the rows the graph proposes, each scored exactly from the slab.
    func graphTopIdentities(_ graph: HNSWGraph, query: UnsafePointer<Float>, k: Int) throws -> TopIdentities {
        var heap = TopIdentities(k: k)
        let labels = try graph.search(query, k: max(k, graph.parameters.efSearch))
        store.rowIdentity.withUnsafeBufferPointer { identity in
            for label in labels {
                guard let r = store.rowIndex(of: label) else { continue }
                scanFused(query: query, dim: store.dim, slab: store.base, storage: storage, rowIdentity: identity.baseAddress!, rows: r..<(r + 1), heap: &heap)
            }
        }
        return heap
    }
}
