/// An open-addressing hash index (linear probing, backward-shift deletion) of non-negative
/// Int32 values whose keys live elsewhere: every operation takes the key's hash and a
/// `matches(value)` test against the caller's key. The gallery's entry id → row and label →
/// identity maps, which opening from a snapshot rebuilds for every row (measured at 1 M rows:
/// Dictionary 0.5 s for the ids and 0.9 s for the labels on a loaded machine).
struct OpenIndex {
    private var hashes: [UInt64] = []
    private var values: [Int32] = []  // −1: empty
    private var mask = -1
    private(set) var count = 0

    /// Makes room for `n` entries at a load of at most 3/4.
    mutating func reserve(_ n: Int) {
        guard n * 4 > values.count * 3 else { return }
        var slots = 16
        while slots * 3 < n * 4 { slots *= 2 }
        let (oldHashes, oldValues) = (hashes, values)
        hashes = [UInt64](repeating: 0, count: slots)
        values = [Int32](repeating: -1, count: slots)
        mask = slots - 1
        count = 0
        for i in oldValues.indices where oldValues[i] >= 0 { insert(oldHashes[i], oldValues[i]) }
    }

    /// The value of the entry with `hash` that `matches`, if any.
    func find(_ hash: UInt64, _ matches: (Int32) -> Bool) -> Int32? {
        guard count > 0 else { return nil }
        var i = Int(truncatingIfNeeded: hash) & mask
        while values[i] >= 0 {
            if hashes[i] == hash && matches(values[i]) { return values[i] }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Adds an entry (the caller knows its key is absent); `value` ≥ 0.
    mutating func insert(_ hash: UInt64, _ value: Int32) {
        reserve(count + 1)
        var i = Int(truncatingIfNeeded: hash) & mask
        while values[i] >= 0 { i = (i + 1) & mask }
        hashes[i] = hash
        values[i] = value
        count += 1
    }

    /// Sets the value of the entry with `hash` that `matches`; false if there is none.
    @discardableResult
    mutating func replace(_ hash: UInt64, _ matches: (Int32) -> Bool, with value: Int32) -> Bool {
        guard let i = slot(hash, matches) else { return false }
        values[i] = value
        return true
    }

    /// Removes the entry with `hash` that `matches`; false if there is none.
    @discardableResult
    mutating func remove(_ hash: UInt64, _ matches: (Int32) -> Bool) -> Bool {
        guard var hole = slot(hash, matches) else { return false }
        values[hole] = -1
        count -= 1
        var j = (hole + 1) & mask
        while values[j] >= 0 {  // shift back every entry whose probe run passes the hole
            let home = Int(truncatingIfNeeded: hashes[j]) & mask
            if (j - home) & mask >= (j - hole) & mask {
                hashes[hole] = hashes[j]; values[hole] = values[j]; values[j] = -1
                hole = j
            }
            j = (j + 1) & mask
        }
        return true
    }

    private func slot(_ hash: UInt64, _ matches: (Int32) -> Bool) -> Int? {
        guard count > 0 else { return nil }
        var i = Int(truncatingIfNeeded: hash) & mask
        while values[i] >= 0 {
            if hashes[i] == hash && matches(values[i]) { return i }
            i = (i + 1) & mask
        }
        return nil
    }
}

/// Keys' hashes for `OpenIndex`, seeded per process (so labels cannot be chosen to collide).
enum IndexHash {
    private static let seed = UInt64.random(in: 1...UInt64.max)

    /// MurmurHash3's 64-bit finaliser.
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33; h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33; h &*= 0xc4ce_b9fe_1a85_ec53
        return h ^ (h >> 33)
    }

    static func id(_ id: UInt64) -> UInt64 { mix(id ^ seed) }

    static func label(_ label: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for b in label.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return mix(h)
    }
}
