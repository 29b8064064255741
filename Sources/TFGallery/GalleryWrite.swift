import TFCore

/// Limits of what one identity carries.
public enum GalleryLimits {
    /// Bytes of a label's UTF-8 (at least 1).
    public static let maxLabelBytes = GalleryRecord.maxLabelBytes
    /// Bytes of an identity's metadata, keys and values together.
    public static let maxMetadataBytes = 1 << 20
    /// Bytes of one enrolment record (embeddings + ids + label + metadata): split larger batches.
    public static let maxRecordBytes = GalleryRecord.maxPayload
}

extension Gallery {
    /// Enrols `embeddings` (n × dim floats, n ≥ 1) under `label`, L2-normalised (then rounded to
    /// float16 or int8 in such a gallery: `GalleryStorage`); `metadata` is merged into the identity's (given keys win).
    /// Returns the new entries' ids. Durable on return. `fingerprint`, when given, must be the
    /// gallery's (the model that made the embeddings).
    @discardableResult
    public func enrol(label: String, embeddings: [Float], metadata: [String: String] = [:],
                      fingerprint given: GalleryFingerprint? = nil) throws -> [UInt64] {
        try embeddings.withUnsafeBufferPointer { try enrol(label: label, embeddings: $0, metadata: metadata, fingerprint: given) }
    }

    /// `enrol` over a buffer (for the C ABI).
    @discardableResult
    public func enrol(label: String, embeddings: UnsafeBufferPointer<Float>, metadata: [String: String] = [:],
                      fingerprint given: GalleryFingerprint? = nil) throws -> [UInt64] {
        let dim = fingerprint.embeddingSize
        try GalleryRecord.checkLabelArgument(label)
        try require(!embeddings.isEmpty && embeddings.count % dim == 0,
                    "enrol '\(label)': \(embeddings.count) floats are not a whole number (≥ 1) of embeddings of \(dim)")
        let n = embeddings.count / dim
        var unit = [Float](repeating: 0, count: embeddings.count)
        try unit.withUnsafeMutableBufferPointer { try normalizeRows(embeddings.baseAddress!, rows: n, dim: dim, into: $0.baseAddress!, what: "embedding") }
        var stored = [UInt8](repeating: 0, count: n * storage.rowBytes(dim: dim))
        stored.withUnsafeMutableBytes { s in unit.withUnsafeBufferPointer { encodeRows($0.baseAddress!, rows: n, dim: dim, storage: storage, into: s.baseAddress!) } }
        return try lock.writing {
            let writer = try checkWritable(given, doing: "enrol into")
            let merged = (store.identityOfLabel[label].map { store.identities[Int($0)]!.metadata } ?? [:]).merging(metadata) { _, new in new }
            let metadataBytes = merged.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
            try require(metadataBytes <= GalleryLimits.maxMetadataBytes && merged.keys.allSatisfy { $0.utf8.count <= 0xFFFF },
                        "enrol '\(label)': metadata of \(metadataBytes) bytes (at most \(GalleryLimits.maxMetadataBytes), keys at most 65535)")
            let ids = (0..<n).map { store.nextID + UInt64($0) }
            let payloadBytes = n * (store.rowBytes + 8) + label.utf8.count + metadataBytes + 6 * metadata.count + 10
            try require(payloadBytes <= GalleryRecord.maxPayload,
                        "enrol '\(label)': \(n) embeddings make a record of \(payloadBytes) bytes, more than \(GalleryRecord.maxPayload); enrol them in smaller batches")
            let bytes: [UInt8] = stored.withUnsafeBytes { GalleryRecord.enrol(label: label, metadata: metadata, ids: ids, vectors: $0).encoded }
            try store.reserve(store.rows + n)
            try writer.append(bytes)
            try bytes.withUnsafeBytes { b in
                let vectors = UnsafeRawBufferPointer(rebasing: b[(b.count - n * store.rowBytes)...])
                try store.apply(.enrol(label: label, metadata: metadata, ids: ids, vectors: vectors))
            }
            updateGraph(added: (store.rows - n)..<store.rows)
            return ids
        }
    }

    /// Removes every embedding of `label`; returns how many. Throws `notFound` if it has none.
    @discardableResult
    public func remove(label: String) throws -> Int {
        try lock.writing {
            let writer = try checkWritable(nil, doing: "remove from")
            guard let identity = store.identityOfLabel[label] else { throw TransFaceError.notFound("gallery '\(path)' has no identity '\(label)'") }
            let removed = store.identities[Int(identity)]!.count
            try commit(.removeLabel(label), writer)
            return removed
        }
    }

    /// Removes the embeddings with these entry ids. Throws `notFound` (removing nothing) if one is not enrolled.
    public func remove(ids: [UInt64]) throws {
        try lock.writing {
            let writer = try checkWritable(nil, doing: "remove from")
            let unique = Array(Set(ids)).sorted()
            guard !unique.isEmpty else { return }
            if let missing = unique.first(where: { !store.contains(id: $0) }) {
                throw TransFaceError.notFound("gallery '\(path)' has no entry \(missing)")
            }
            try commit(.removeIDs(unique), writer)
        }
    }

    /// Appends a removal, applies it, and compacts when removed entries passed the threshold.
    private func commit(_ record: GalleryRecord, _ writer: GalleryLogWriter) throws {
        try writer.append(record.encoded)
        let removedIDs: [UInt64]
        switch record {
        case let .removeLabel(label): removedIDs = store.ids(of: label)
        case let .removeIDs(ids): removedIDs = ids
        case .enrol: removedIDs = []
        }
        try store.apply(record)
        updateGraph(removed: removedIDs)
        let dead = store.fileRows - store.rows
        if dead >= 64 && Double(dead) > options.compactionFraction * Double(store.fileRows) { try compactLocked() }
    }
}

extension GalleryRecord {
    static func checkLabelArgument(_ label: String) throws {
        try require(!label.isEmpty && label.utf8.count <= maxLabelBytes, "a label must have 1...\(maxLabelBytes) bytes of UTF-8, got \(label.utf8.count)")
    }
}
