import CTransFace
import TFCore
import TFGallery
import TFModel

#if canImport(Glibc)
import Glibc
#endif

/// The 1:N gallery: open, enrol, remove, list, search.

extension transface_gallery_params: ABIStruct {
    static var abiName: String { "transface_gallery_params" }
    static var firstReleasedSize: Int { 16 }
}
extension transface_match: ABIStruct {
    static var abiName: String { "transface_match" }
    static var firstReleasedSize: Int { 32 }
}

/// What a `transface_gallery *` points to: the gallery and the C strings of the labels it has
/// handed out (interned, alive until close; guarded for concurrent searches).
final class GalleryHandle: HandleObject {
    static var handleKind: HandleKind { .gallery }
    let gallery: Gallery
    /// The cosine threshold stored in the model the gallery was opened with, if any.
    let storedThreshold: Double?
    private var labels: [String: UnsafePointer<CChar>] = [:]
    private var lock = pthread_mutex_t()

    init(_ gallery: Gallery, storedThreshold: Double?) {
        self.gallery = gallery
        self.storedThreshold = storedThreshold
        pthread_mutex_init(&lock, nil)
    }

    /// A C string of `label` that lives as long as this handle.
    func cLabel(_ label: String) -> UnsafePointer<CChar> {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        if let p = labels[label] { return p }
        let p = UnsafePointer(strdup(label)!)
        labels[label] = p
        return p
    }

    deinit {
        gallery.close()
        for p in labels.values { free(UnsafeMutableRawPointer(mutating: p)) }
        pthread_mutex_destroy(&lock)
    }
}

@c public func transface_gallery_default_params() -> transface_gallery_params {
    var p = transface_gallery_params()
    p.struct_size = UInt32(MemoryLayout<transface_gallery_params>.size)
    p.storage = Int32(TRANSFACE_GALLERY_FLOAT32.rawValue)
    p.read_only = 0
    p.search_threads = 1
    let hnsw = HNSWParameters()
    p.index = Int32(TRANSFACE_GALLERY_EXACT.rawValue)
    p.hnsw_m = Int32(hnsw.m)
    p.hnsw_ef_construction = Int32(hnsw.efConstruction)
    p.hnsw_ef_search = Int32(hnsw.efSearch)
    p.hnsw_seed = hnsw.seed
    return p
}

@c public func transface_gallery_params_init(_ params: UnsafeMutablePointer<transface_gallery_params>?, _ size: UInt32) -> transface_status {
    guarded("transface_gallery_params_init") { try initStruct(params, size: size, defaults: transface_gallery_default_params()) }
}

@c public func transface_gallery_open(_ path: UnsafePointer<CChar>?, _ model: OpaquePointer?,
                                      _ params: UnsafePointer<transface_gallery_params>?,
                                      _ out: UnsafeMutablePointer<OpaquePointer?>?) -> transface_status {
    guarded("transface_gallery_open") {
        let out = try required(out, "out_gallery")
        out.pointee = nil
        let path = try string(path, "path")
        let p = try readStruct(params, defaults: transface_gallery_default_params())
        guard let storage = GalleryStorage(rawValue: UInt8(clamping: p.storage)), p.storage >= 0 else {
            throw TransFaceError.invalidArgument("storage \(p.storage) is not a transface_gallery_storage")
        }
        try require(p.read_only == 0 || p.read_only == 1, "read_only must be 0 or 1, got \(p.read_only)")
        let m = try model.map { try Handle.get($0, ModelHandle.self, "model").model }
        let fingerprint = try m.map { try GalleryFingerprint(model: $0) }
        try require(fingerprint != nil || p.read_only == 1, "model is NULL: only a read-only gallery can be opened without a model")
        let index: GalleryIndex
        switch p.index {
        case Int32(TRANSFACE_GALLERY_EXACT.rawValue): index = .exact
        case Int32(TRANSFACE_GALLERY_HNSW.rawValue):
            index = .hnsw(HNSWParameters(m: Int(p.hnsw_m), efConstruction: Int(p.hnsw_ef_construction), efSearch: Int(p.hnsw_ef_search), seed: p.hnsw_seed))
        default: throw TransFaceError.invalidArgument("index \(p.index) is not a transface_gallery_index")
        }
        let options = GalleryOptions(storage: storage, readOnly: p.read_only == 1, searchThreads: Int(p.search_threads), index: index)
        out.pointee = Handle.make(GalleryHandle(try Gallery.open(path: path, fingerprint: fingerprint, options: options),
                                                storedThreshold: try m?.storedVerificationThreshold()))
    }
}

@c public func transface_gallery_close(_ gallery: OpaquePointer?) { Handle.release(gallery, GalleryHandle.self, "transface_gallery_close") }

@c public func transface_gallery_enrol(_ gallery: OpaquePointer?, _ label: UnsafePointer<CChar>?, _ embeddings: UnsafePointer<Float>?,
                                       _ count: Int, _ dim: Int, _ metadata: UnsafePointer<UnsafePointer<CChar>?>?, _ metadataCount: Int,
                                       _ outIDs: UnsafeMutablePointer<UInt64>?) -> transface_status {
    guarded("transface_gallery_enrol") {
        let h = try Handle.get(gallery, GalleryHandle.self, "gallery"), g = h.gallery
        let label = try string(label, "label"), embeddings = try required(embeddings, "embeddings")
        try require(count >= 1, "count must be at least 1, got \(count)")
        try require(dim == g.fingerprint.embeddingSize, "dim \(dim) is not the gallery's embedding size \(g.fingerprint.embeddingSize)")
        let total = try checkedProduct([count, dim], what: "embeddings")
        var meta: [String: String] = [:]
        if metadataCount > 0 {
            let pairs = try required(metadata, "metadata")
            for i in 0..<metadataCount {
                meta[try string(pairs[2 * i], "metadata[\(2 * i)]")] = try string(pairs[2 * i + 1], "metadata[\(2 * i + 1)]")
            }
        }
        let ids = try h.gallery.enrol(label: label, embeddings: UnsafeBufferPointer(start: embeddings, count: total), metadata: meta)
        if let outIDs { for (i, id) in ids.enumerated() { outIDs[i] = id } }
    }
}

@c public func transface_gallery_remove(_ gallery: OpaquePointer?, _ label: UnsafePointer<CChar>?,
                                        _ outRemoved: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_gallery_remove") {
        let h = try Handle.get(gallery, GalleryHandle.self, "gallery"), label = try string(label, "label")
        let removed = try h.gallery.remove(label: label)
        outRemoved?.pointee = removed
    }
}

@c public func transface_gallery_count(_ gallery: OpaquePointer?) -> Int {
    (try? Handle.get(gallery, GalleryHandle.self, "gallery"))?.gallery.count ?? 0
}

@c public func transface_gallery_identity_count(_ gallery: OpaquePointer?) -> Int {
    (try? Handle.get(gallery, GalleryHandle.self, "gallery"))?.gallery.identityCount ?? 0
}

@c public func transface_gallery_identity(_ gallery: OpaquePointer?, _ index: Int, _ outLabel: UnsafeMutablePointer<UnsafePointer<CChar>?>?,
                                          _ outCount: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_gallery_identity") {
        let h = try Handle.get(gallery, GalleryHandle.self, "gallery")
        let outLabel = try required(outLabel, "out_label")
        let identities = try h.gallery.list()  // sorted once, kept until a write (Gallery.list)
        try require(index >= 0 && index < identities.count, "index \(index) is outside 0..<\(identities.count)")
        outLabel.pointee = h.cLabel(identities[index].label)
        outCount?.pointee = identities[index].count
    }
}

@c public func transface_gallery_search(_ gallery: OpaquePointer?, _ queries: UnsafePointer<Float>?, _ count: Int, _ dim: Int,
                                        _ k: Int, _ threshold: Float, _ outMatches: UnsafeMutablePointer<transface_match>?,
                                        _ capacity: Int, _ outFound: UnsafeMutablePointer<Int>?) -> transface_status {
    guarded("transface_gallery_search") {
        let h = try Handle.get(gallery, GalleryHandle.self, "gallery")
        let queries = try required(queries, "queries"), found = try required(outFound, "out_found")
        try require(count >= 1 && k >= 1, "count and k must be at least 1 (got \(count), \(k))")
        try require(dim == h.gallery.fingerprint.embeddingSize, "dim \(dim) is not the gallery's embedding size \(h.gallery.fingerprint.embeddingSize)")
        let slots = try checkedProduct([count, k], what: "matches")
        try require(capacity >= slots, "capacity \(capacity) is smaller than count x k = \(slots)")
        let first = try checkStruct(outMatches, "out_matches")
        let element = Int(UnsafeRawPointer(first).loadUnaligned(as: UInt32.self))
        var t = threshold
        if t.isNaN {
            guard let stored = h.storedThreshold else {
                throw TransFaceError.notFound("threshold is NaN and the model stores no verification_threshold "
                                              + "(`transface eval --set-threshold-far` stores one)")
            }
            t = Float(stored)
        }
        let results = try h.gallery.search(queries: UnsafeBufferPointer(start: queries, count: try checkedProduct([count, dim], what: "queries")),
                                           k: k, threshold: t)
        let raw = UnsafeMutableRawPointer(first)
        for (q, matches) in results.enumerated() {
            found[q] = matches.count
            for (j, m) in matches.enumerated() {
                var c = transface_match()
                c.score = m.score
                c.passes = m.passes ? 1 : 0
                c.entry_id = m.entryID
                c.label = h.cLabel(m.label)
                let slot = raw + (q * k + j) * element
                slot.storeBytes(of: UInt32(element), as: UInt32.self)  // each element states the caller's size
                try writeStruct(c, to: slot.assumingMemoryBound(to: transface_match.self), "out_matches")
            }
        }
    }
}
