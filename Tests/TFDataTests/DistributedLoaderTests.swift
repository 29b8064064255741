import TFCore
@testable import TFData
import XCTest

/// `DataLoader.Options.rank/worldSize`: W ranks with batch B see, step by step, exactly the
/// samples (and flips, pixels) of one process with batch W·B, dealt by stride.
final class DistributedLoaderTests: XCTestCase {
    func loader(batch: Int, rank: Int = 0, world: Int = 1) throws -> DataLoader {
        var o = DataLoader.Options()
        o.batchSize = batch; o.threads = 2; o.seed = 9; o.width = 8; o.height = 6; o.epochs = 2
        o.rank = rank; o.worldSize = world
        return try DataLoader(dataset: SyntheticDataset(53), decode: SyntheticDataset.decoder(8, 6), options: o)
    }

    func all(_ l: DataLoader) throws -> [DataLoader.Batch] {
        var out: [DataLoader.Batch] = []
        while let b = try l.next() { out.append(b) }
        return out
    }

    func testRanksTogetherSeeTheSingleProcessBatches() throws {
        for world in [2, 3] {
            let single = try all(loader(batch: 4 * world))
            let ranks = try (0..<world).map { try all(loader(batch: 4, rank: $0, world: world)) }
            XCTAssertEqual(single.count, 2 * (53 / (4 * world)))  // drop_last over the global batch
            for r in 0..<world { XCTAssertEqual(ranks[r].count, single.count) }
            for (step, whole) in single.enumerated() {
                for r in 0..<world {
                    let part = ranks[r][step], mine = Array(stride(from: r, to: whole.count, by: world))
                    XCTAssertEqual(part.count, 4)
                    XCTAssertEqual(part.indices, mine.map { whole.indices[$0] }, "world \(world), step \(step), rank \(r)")
                    XCTAssertEqual(part.flipped, mine.map { whole.flipped[$0] })
                    XCTAssertEqual(part.labels, mine.map { whole.labels[$0] })
                    XCTAssertEqual(part.images, mine.flatMap { whole.images[($0 * 144)..<($0 * 144 + 144)] })
                    XCTAssertEqual(part.position, whole.position, "positions are global")
                }
            }
        }
    }

    func testBadRankOrPartialBatchesAreRefused() throws {
        XCTAssertThrowsError(try loader(batch: 4, rank: 2, world: 2))
        XCTAssertThrowsError(try loader(batch: 4, rank: -1, world: 2))
        XCTAssertThrowsError(try loader(batch: 30, rank: 0, world: 2))  // 53 samples < one global batch of 60
        var o = DataLoader.Options()
        o.batchSize = 4; o.width = 8; o.height = 6; o.dropLast = false; o.worldSize = 2
        XCTAssertThrowsError(try DataLoader(dataset: SyntheticDataset(53), decode: SyntheticDataset.decoder(8, 6), options: o))
    }
}
