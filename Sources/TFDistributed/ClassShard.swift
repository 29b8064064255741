/// The classes one rank holds in class-sharded Partial FC: `start..<start + count` of `total`,
/// split as arcface_torch's `PartialFC_V2`: `count = total / size + (rank < total % size ? 1 : 0)`,
/// `start = total / size · rank + min(rank, total % size)`.
public struct ClassShard: Equatable, Sendable {
    public let start: Int
    public let count: Int
    public let total: Int

    public init(total: Int, rank: Int, size: Int) {
        precondition(size >= 1 && rank >= 0 && rank < size && total >= 0, "class shard: rank \(rank) of \(size), \(total) classes")
        let base = total / size, extra = total % size
        start = base * rank + min(rank, extra)
        count = base + (rank < extra ? 1 : 0)
        self.total = total
    }

    public var range: Range<Int> { start..<(start + count) }
}
