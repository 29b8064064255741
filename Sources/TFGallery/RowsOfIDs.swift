/// Entry id → row. Ids are handed out in order, so while they stay below 4 × entries + 65536
/// the map is a dense array (a snapshot open fills it for every row without hashing); past
/// that (many removed, or a file with far-apart ids) it turns into a Dictionary for good.
struct RowsOfIDs {
    private var dense: [Int32]? = []  // row + 1 at index id; 0: no entry
    private var sparse: [UInt64: Int] = [:]
    private(set) var count = 0

    private var denseLimit: UInt64 { UInt64(4 * count + 65536) }

    /// Makes room for `n` entries with ids below `idLimit` (dense if those ids would be).
    mutating func reserve(_ n: Int, idLimit: UInt64) {
        if dense != nil && idLimit <= UInt64(4 * n + 65536) {
            if dense!.count < Int(idLimit) { dense!.append(contentsOf: repeatElement(0, count: Int(idLimit) - dense!.count)) }
        } else {
            toSparse()
            sparse.reserveCapacity(n)
        }
    }

    subscript(id: UInt64) -> Int? {
        get {
            guard let dense else { return sparse[id] }
            return id < UInt64(dense.count) && dense[Int(id)] > 0 ? Int(dense[Int(id)]) - 1 : nil
        }
        set {
            if let dense, newValue != nil, id >= UInt64(dense.count), id >= denseLimit { toSparse() }
            guard dense != nil else {
                let old = newValue == nil ? sparse.removeValue(forKey: id) : sparse.updateValue(newValue!, forKey: id)
                count += (old == nil ? 0 : -1) + (newValue == nil ? 0 : 1)
                return
            }
            let i = Int(id)
            if i >= dense!.count {
                guard newValue != nil else { return }
                dense!.append(contentsOf: repeatElement(0, count: i + 1 - dense!.count))
            }
            count += (dense![i] > 0 ? -1 : 0) + (newValue == nil ? 0 : 1)
            dense![i] = newValue.map { Int32($0 + 1) } ?? 0
        }
    }

    private mutating func toSparse() {
        guard let d = dense else { return }
        sparse.reserveCapacity(count)
        for (id, r) in d.enumerated() where r > 0 { sparse[UInt64(id)] = Int(r) - 1 }
        dense = nil
    }
}
