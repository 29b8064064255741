import TFCore
#if canImport(Glibc)
import Glibc
#endif

/// The in-memory state of a gallery: every live embedding in one contiguous slab of rows (in
/// the storage precision, unit norm), with its entry id and identity, and the identities.
/// Removal moves the last row into the hole, so the slab stays dense. Not thread-safe: the
/// `Gallery` holds its lock around every use.
final class GalleryStore {
    struct Identity {
        var label: String
        var metadata: [String: String]
        var count: Int
    }

    let dim: Int
    let storage: GalleryStorage
    let rowBytes: Int
    private(set) var slab: FloatSlab
    private(set) var capacity: Int
    private(set) var rows = 0
    private(set) var ids: [UInt64] = []
    private(set) var rowIdentity: [Int32] = []
    private var rowOfID = RowsOfIDs()
    private(set) var identities: [Identity?] = []
    private(set) var identityOfLabel: [String: Int32] = [:]
    private var freeIdentities: [Int32] = []
    var nextID: UInt64
    /// Embeddings the file holds, live or removed (what compaction would drop: fileRows - rows).
    var fileRows = 0
    /// Changes with every applied record (what cached views of the state compare).
    private(set) var version: UInt64 = 0

    init(dim: Int, storage: GalleryStorage, nextID: UInt64, expectedRows: Int = 0) throws {
        self.dim = dim
        self.storage = storage
        self.rowBytes = storage.rowBytes(dim: dim)
        self.nextID = nextID
        capacity = max(expectedRows, 64)
        slab = try GalleryStore.allocate(rows: capacity, rowBytes: rowBytes)
    }

    /// A store from a snapshot's parts (`GallerySnapshot`), checked against each other: every
    /// row's identity present and counted, labels and entry ids unique. Throws `format`.
    init(dim: Int, storage: GalleryStorage, nextID: UInt64, fileRows: Int, slab: FloatSlab, capacity: Int, rows: Int,
         ids: [UInt64], rowIdentity: [Int32], identities: [Identity?], what: String) throws {
        self.dim = dim
        self.storage = storage
        self.rowBytes = storage.rowBytes(dim: dim)
        self.nextID = nextID
        self.fileRows = fileRows
        self.slab = slab
        self.capacity = capacity
        self.rows = rows
        self.ids = ids
        self.rowIdentity = rowIdentity
        self.identities = identities
        guard ids.count == rows, rowIdentity.count == rows, capacity >= rows, fileRows >= rows else {
            throw GalleryErrors.damaged("\(what): row tables disagree")
        }
        var counted = [Int](repeating: 0, count: identities.count)
        for identity in rowIdentity {
            guard identity >= 0, Int(identity) < identities.count, identities[Int(identity)] != nil else {
                throw GalleryErrors.damaged("\(what): a row belongs to identity \(identity), which does not exist")
            }
            counted[Int(identity)] += 1
        }
        rowOfID.reserve(rows, idLimit: nextID)
        for (r, id) in ids.enumerated() {
            guard rowOfID[id] == nil, id < nextID else { throw GalleryErrors.damaged("\(what): entry id \(id) twice or past the next id") }
            rowOfID[id] = r
        }
        identityOfLabel.reserveCapacity(identities.count)
        for (i, slot) in identities.enumerated() {
            guard let slot else { freeIdentities.append(Int32(i)); continue }
            guard slot.count == counted[i], slot.count > 0, identityOfLabel.updateValue(Int32(i), forKey: slot.label) == nil else {
                throw GalleryErrors.damaged("\(what): identity '\(slot.label)' is listed twice or its count disagrees with its rows")
            }
        }
        freeIdentities.reverse()
    }

    static func allocate(rows: Int, rowBytes: Int) throws -> FloatSlab {
        let bytes = try checkedProduct([rows, rowBytes], what: "gallery slab")
        return try FloatSlab(count: (bytes + 3) / 4)
    }

    /// Start of row `r`.
    func row(_ r: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(slab.base) + r * rowBytes }
    var base: UnsafeRawPointer { UnsafeRawPointer(slab.base) }

    func identity(ofRow r: Int) -> Identity { identities[Int(rowIdentity[r])]! }
    func contains(id: UInt64) -> Bool { rowOfID[id] != nil }
    /// Row of entry `id`, if enrolled.
    func rowIndex(of id: UInt64) -> Int? { rowOfID[id] }

    /// Throws (`what` names the record) unless `record` is consistent with the state.
    func check(_ record: GalleryRecord, what: String) throws {
        switch record {
        case let .enrol(_, _, ids, _):
            var seen = Set<UInt64>()
            for id in ids where rowOfID[id] != nil || !seen.insert(id).inserted {
                throw GalleryErrors.damaged("\(what) enrols entry id \(id), which is already enrolled")
            }
        case let .removeLabel(label):
            guard identityOfLabel[label] != nil else { throw GalleryErrors.damaged("\(what) removes '\(label)', which is not enrolled") }
        case let .removeIDs(ids):
            for id in ids where rowOfID[id] == nil { throw GalleryErrors.damaged("\(what) removes entry id \(id), which is not enrolled") }
        }
    }

    /// Applies a record that passed `check`.
    func apply(_ record: GalleryRecord) throws {
        version &+= 1
        switch record {
        case let .enrol(label, metadata, newIDs, vectors):
            try reserve(rows + newIDs.count)
            let identity: Int32
            if let existing = identityOfLabel[label] {
                identity = existing
                identities[Int(identity)]!.metadata.merge(metadata) { _, new in new }
                identities[Int(identity)]!.count += newIDs.count
            } else {
                let slot = Identity(label: label, metadata: metadata, count: newIDs.count)
                if let free = freeIdentities.popLast() { identity = free; identities[Int(free)] = slot } else {
                    identity = Int32(identities.count); identities.append(slot)
                }
                identityOfLabel[label] = identity
            }
            memcpy(row(rows), vectors.baseAddress!, newIDs.count * rowBytes)
            for id in newIDs {
                rowOfID[id] = rows
                ids.append(id)
                rowIdentity.append(identity)
                rows += 1
                nextID = max(nextID, id &+ 1)
            }
            fileRows += newIDs.count
        case let .removeLabel(label):
            let identity = identityOfLabel[label]!
            removeRows(ids.indices.filter { rowIdentity[$0] == identity })
        case let .removeIDs(removed):
            removeRows(removed.map { rowOfID[$0]! })
        }
    }

    /// Entry ids of a label's rows.
    func ids(of label: String) -> [UInt64] {
        guard let identity = identityOfLabel[label] else { return [] }
        return ids.indices.filter { rowIdentity[$0] == identity }.map { ids[$0] }
    }

    private func removeRows(_ doomed: [Int]) {
        for r in doomed.sorted(by: >) {  // highest first: the row moved into a hole is never a doomed one
            let identity = Int(rowIdentity[r])
            identities[identity]!.count -= 1
            if identities[identity]!.count == 0 {
                identityOfLabel[identities[identity]!.label] = nil
                identities[identity] = nil
                freeIdentities.append(Int32(identity))
            }
            rowOfID[ids[r]] = nil
            let last = rows - 1
            if r != last {
                memcpy(row(r), row(last), rowBytes)
                ids[r] = ids[last]
                rowIdentity[r] = rowIdentity[last]
                rowOfID[ids[r]] = r
            }
            ids.removeLast()
            rowIdentity.removeLast()
            rows -= 1
        }
    }

    /// Makes room for `needed` rows (before an append, so that applying it cannot fail).
    func reserve(_ needed: Int) throws {
        guard needed > capacity else { return }
        try require(needed < Int(Int32.max), "a gallery holds fewer than \(Int32.max) embeddings")
        let grown = max(needed, capacity * 2)
        let bigger = try GalleryStore.allocate(rows: grown, rowBytes: rowBytes)
        memcpy(bigger.base, slab.base, rows * rowBytes)
        slab = bigger
        capacity = grown
    }
}
