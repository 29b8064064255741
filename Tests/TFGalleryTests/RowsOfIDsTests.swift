import TFCore
import XCTest
@testable import TFGallery

/// `RowsOfIDs` against a Dictionary through random sets and removals: ids handed out in order
/// (dense), then far-apart ones that turn it into a Dictionary, and a reserve from a snapshot.
final class RowsOfIDsTests: XCTestCase {
    func testAgreesWithADictionary() {
        for farAfter in [Int.max, 3000] {
            var rng = SeededRNG(seed: UInt64(truncatingIfNeeded: farAfter))
            var map = RowsOfIDs(), model: [UInt64: Int] = [:]
            var next: UInt64 = 0
            for step in 0..<8000 {
                switch rng.next() % 4 {
                case 0, 1:
                    let id = step >= farAfter && rng.next() % 5 == 0 ? next + 1_000_000_000 : next
                    next = id + 1
                    let row = Int(rng.next() % 100_000)
                    map[id] = row; model[id] = row
                case 2:
                    let id = rng.next() % (next + 10)
                    map[id] = nil; model[id] = nil
                default:
                    if let id = model.keys.randomElement(using: &rng) {
                        let row = Int(rng.next() % 100_000)
                        map[id] = row; model[id] = row
                    }
                }
                XCTAssertEqual(map.count, model.count, "step \(step)")
                if step % 499 == 0 {
                    for id in model.keys { XCTAssertEqual(map[id], model[id]) }
                    for _ in 0..<50 { let id = rng.next() % (next + 100); XCTAssertEqual(map[id], model[id]) }
                }
            }
        }
        var reserved = RowsOfIDs()
        reserved.reserve(10, idLimit: 1 << 40)  // far-apart ids: a Dictionary from the start
        reserved[1 << 39] = 3
        XCTAssertEqual(reserved[1 << 39], 3)
        XCTAssertNil(reserved[5])
    }
}
