/// The best `k` identities of one query, each with its best score: a bounded min-heap keyed by
/// score that holds each identity at most once. A score at or below the heap's floor (the k-th
/// best so far) is rejected with one comparison, which is the common case in a large scan.
/// Merging the heaps of disjoint row ranges gives the heap of their union.
struct TopIdentities {
    let k: Int
    private(set) var scores: [Float] = []
    private(set) var identities: [Int32] = []
    private(set) var rows: [Int] = []
    /// Scores at or below this cannot enter (−∞ until the heap is full).
    private(set) var floor: Float = -.infinity

    init(k: Int) {
        self.k = k
        scores.reserveCapacity(k)
        identities.reserveCapacity(k)
        rows.reserveCapacity(k)
    }

    /// Offers row `row` of `identity` with `score`.
    @inline(__always)
    mutating func offer(_ score: Float, identity: Int32, row: Int) {
        if score > floor { insert(score, identity, row) }
    }

    private mutating func insert(_ score: Float, _ identity: Int32, _ row: Int) {
        if let at = identities.firstIndex(of: identity) {
            guard score > scores[at] else { return }
            scores[at] = score
            rows[at] = row
            siftDown(at)
        } else if scores.count < k {
            scores.append(score); identities.append(identity); rows.append(row)
            siftUp(scores.count - 1)
        } else {
            scores[0] = score; identities[0] = identity; rows[0] = row
            siftDown(0)
        }
        if scores.count == k { floor = scores[0] }
    }

    /// Adds every identity of `other` (a heap of other rows).
    mutating func merge(_ other: TopIdentities) {
        for i in other.scores.indices { offer(other.scores[i], identity: other.identities[i], row: other.rows[i]) }
    }

    /// (score, identity, row), best first; ties by lower row.
    func sorted() -> [(score: Float, identity: Int32, row: Int)] {
        scores.indices.map { (scores[$0], identities[$0], rows[$0]) }
            .sorted { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        scores.swapAt(a, b); identities.swapAt(a, b); rows.swapAt(a, b)
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        while i > 0 {
            let parent = (i - 1) / 2
            guard scores[i] < scores[parent] else { return }
            swapAt(i, parent)
            i = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < scores.count && scores[l] < scores[smallest] { smallest = l }
            if r < scores.count && scores[r] < scores[smallest] { smallest = r }
            if smallest == i { return }
            swapAt(i, smallest)
            i = smallest
        }
    }
}
