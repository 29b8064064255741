import TFCore
import TFTestSupport
import XCTest
@testable import TFGallery

/// `OpenIndex` against a Dictionary through random inserts, replacements and removals, with
/// well-spread hashes and with hashes forced into a few buckets (long probe runs, so removal
/// must shift entries back across them).
final class OpenIndexTests: XCTestCase {
    func testAgreesWithADictionary() {
        for buckets in [UInt64.max, 7] {
            var rng = SeededRNG(seed: buckets)
            var index = OpenIndex()
            var model: [UInt64: Int32] = [:]  // key → value; a value names its key in `keyOf`
            var keyOf: [Int32: UInt64] = [:]
            var nextValue: Int32 = 0
            func hash(_ key: UInt64) -> UInt64 { buckets == .max ? IndexHash.id(key) : IndexHash.id(key % buckets) }
            for step in 0..<20_000 {
                let key = rng.next() % 3000
                switch rng.next() % 3 {
                case 0 where model[key] == nil:
                    index.insert(hash(key), nextValue)
                    model[key] = nextValue; keyOf[nextValue] = key; nextValue += 1
                case 1:
                    let removed = index.remove(hash(key)) { keyOf[$0] == key }
                    XCTAssertEqual(removed, model[key] != nil, "step \(step)")
                    if let v = model.removeValue(forKey: key) { keyOf[v] = nil }
                default:
                    if let old = model[key] {
                        XCTAssertTrue(index.replace(hash(key), { $0 == old }, with: nextValue))
                        keyOf[old] = nil; model[key] = nextValue; keyOf[nextValue] = key; nextValue += 1
                    }
                }
                XCTAssertEqual(index.count, model.count)
                if step % 997 == 0 {
                    for k in 0..<3000 as Range<UInt64> {
                        XCTAssertEqual(index.find(hash(k)) { keyOf[$0] == k }, model[k], "step \(step) key \(k)")
                    }
                }
            }
        }
    }
}
